"""The hot-path shortcuts of issue 8 give exactly what the plain code gives: the cached per-level
checksum text, Kraken's one-loop book apply (digits, number check and event levels together), the
one-pass book decode, the per-second timestamp cache, the Primary number check, and the Primary
session's `Md` handling (one-pass decode, change-first event building, lazy book)."""

from __future__ import annotations

import json
import random
import zlib
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.fuzz.mutations import captured, fuzz_settings, mutated

from brokerbridge.core.book import OrderBook
from brokerbridge.core.errors import ProtocolError
from brokerbridge.core.events import (
    AnyEvent,
    BookSnapshot,
    BookUpdate,
    Channel,
    Level,
    StreamState,
    StreamStatus,
    Subscription,
)
from brokerbridge.core.numbers import first_insane
from brokerbridge.core.signals import BadFrame, Resyncing
from brokerbridge.venues.kraken.book import KrakenBook, KrakenBookError
from brokerbridge.venues.kraken.checksum import book_checksum, level_digits
from brokerbridge.venues.kraken.messages import BookFrame, BookLevel, level_is_sane, parse_ws_frame
from brokerbridge.venues.kraken.normalize import TimestampParser, parse_timestamp
from brokerbridge.venues.kraken.session import KrakenWsSession
from brokerbridge.venues.primary.messages import MarketData, MdFrame, PriceSize, check_market_data
from brokerbridge.venues.primary.messages import parse_ws_frame as parse_primary_frame
from brokerbridge.venues.primary.normalize import (
    BOOK_ENTRIES,
    STATS_ENTRIES,
    TICKER_ENTRIES,
    TradeTracker,
    book_from_md,
    ms_to_seconds,
    stats_from_md,
    ticker_from_md,
)
from brokerbridge.venues.primary.session import PrimaryWsSession


def _frames(kraken_dir: Path) -> list[str]:
    updates = (kraken_dir / "ws_book_updates_btcusd.jsonl").read_text().splitlines()
    return [(kraken_dir / "ws_book_snapshot_btcusd.json").read_text(), *updates]


def test_cached_level_text_gives_the_reference_checksum_after_every_frame(kraken_dir: Path) -> None:
    book, kraken_book = OrderBook(10, level_text=level_digits), KrakenBook(10)
    for text in _frames(kraken_dir):
        frame = parse_ws_frame(text)
        assert isinstance(frame, BookFrame)
        data = frame.data[0]
        book.apply(data.bids, data.asks)
        reference = book_checksum(
            [(lv.price, lv.qty) for lv in book.asks_levels(10)],
            [(lv.price, lv.qty) for lv in book.bids_levels(10)],
        )
        assert zlib.crc32("".join(book.top_text(10)).encode()) == reference == data.checksum
        kraken_book.apply_wire(data.bids, data.asks)
        assert kraken_book.checksum() == data.checksum
        assert kraken_book.top_text(10) == book.top_text(10)


def test_cached_text_follows_deletes_truncation_and_new_digits() -> None:
    book = OrderBook(2, level_text=level_digits)
    book.apply([], [_level("10.0", "1.50"), _level("11.0", "2"), _level("12.0", "3")])
    assert book.top_text(10) == ("100150" + "1102", "")  # 12.0 cut by depth 2
    book.apply([], [_level("10.00", "0.0"), _level("11.0", "2.000")])  # delete, then same price re-sent
    assert book.top_text(10) == ("1102000", "")
    book.apply([_level("9", "1"), _level("8", "1")], [])
    assert book.top_text(1) == ("1102000", "91")  # bids best (highest) first


class _PlainBook:
    """The book as the issue describes it, with no shortcut: a dict per side, sorted on read."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.sides: tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]] = ({}, {})  # bids, asks

    def apply(self, bids: list[_Lv], asks: list[_Lv]) -> None:
        for side, levels, best_first in ((self.sides[0], bids, True), (self.sides[1], asks, False)):
            for level in levels:
                side.pop(level.price, None)  # the newest price object (its digits) is kept
                if level.qty:
                    side[level.price] = level.qty
            for price in sorted(side, reverse=best_first)[self.depth :]:
                del side[price]

    def levels(self, bids: bool) -> list[tuple[str, str]]:
        side = self.sides[0 if bids else 1]
        return [(str(p), str(side[p])) for p in sorted(side, reverse=bids)]


@given(
    st.lists(
        st.tuples(
            st.booleans(),  # bid?
            st.integers(90, 110),  # price in ticks
            # Trailing zeros or exponent form: the same price, other digits.
            st.sampled_from(["", "0", "00", "E+0", "0E-1"]),
            st.sampled_from(
                [
                    "0",
                    "0.0",
                    "0E-8",
                    "1",
                    "0.50",
                    "2.000",
                    "0.00012",
                    "1E-7",
                    "1.5E+2",
                    "0.00000100",
                    "12345.678",
                ]
            ),
        ),
        max_size=60,
    ),
    st.integers(1, 6),
    st.integers(1, 5),
)
@fuzz_settings
def test_book_gives_the_plain_books_levels_and_digits(
    ops: list[tuple[bool, int, str, str]], depth: int, per_message: int
) -> None:
    book, plain = OrderBook(depth, level_text=level_digits), _PlainBook(depth)
    kraken_book = KrakenBook(depth)
    for start in range(0, len(ops), per_message):
        bids = [
            _level(f"{tick / 10}{zeros}", qty)
            for bid, tick, zeros, qty in ops[start : start + per_message]
            if bid
        ]
        asks = [
            _level(f"{tick / 10}{zeros}", qty)
            for bid, tick, zeros, qty in ops[start : start + per_message]
            if not bid
        ]
        book.apply(bids, asks)
        plain.apply(bids, asks)
        wire_bids = [BookLevel(price=lv.price, qty=lv.qty) for lv in bids]
        wire_asks = [BookLevel(price=lv.price, qty=lv.qty) for lv in asks]
        applied = kraken_book.apply_wire(wire_bids, wire_asks)
        assert all(isinstance(lv, Level) for side in applied for lv in side)
        assert [[(str(lv.price), str(lv.qty)) for lv in side] for side in applied] == [
            [(str(lv.price), str(lv.qty)) for lv in side] for side in (bids, asks)
        ]
        assert kraken_book.top_text(depth) == book.top_text(depth)
        assert (kraken_book.bids_levels(), kraken_book.asks_levels()) == (
            book.bids_levels(),
            book.asks_levels(),
        )
        top = (book.asks_levels(10), book.bids_levels(10))
        assert kraken_book.checksum() == book_checksum(*([(lv.price, lv.qty) for lv in side] for side in top))
        got_bids = [(str(lv.price), str(lv.qty)) for lv in book.bids_levels()]
        got_asks = [(str(lv.price), str(lv.qty)) for lv in book.asks_levels()]
        assert (got_bids, got_asks) == (plain.levels(bids=True), plain.levels(bids=False))
        assert [(str(lv.price), str(lv.qty)) for lv in book.bids_levels(2)] == got_bids[:2]
        best_bid, best_ask = book.best_bid(), book.best_ask()
        assert (best_bid and (str(best_bid.price), str(best_bid.qty))) == (got_bids[0] if got_bids else None)
        assert (best_ask and (str(best_ask.price), str(best_ask.qty))) == (got_asks[0] if got_asks else None)
        assert len(book) == len(got_bids) + len(got_asks)
        digits = [level_digits(Decimal(p), Decimal(q)) for p, q in got_asks[:3] + got_bids[:3]]
        assert "".join(book.top_text(3)) == "".join(digits)


def test_kraken_update_events_carry_the_wire_numbers(kraken_dir: Path) -> None:
    texts = _frames(kraken_dir)
    session = KrakenWsSession(private=False, wall_clock=lambda: 0.0)
    session.add(Subscription(venue="kraken", channel=Channel.BOOK, symbol="BTC/USD", depth=10), 0.0)
    session.connection_made(0.0)
    for text in texts:
        session.receive_text(text, 1.0)
    events = session.events_received()
    assert not session.signals_received()[1:]  # the one Subscribed (by data): no resync, no bad frame
    assert len(events) == len(texts)
    for text, event in zip(texts[1:], events[1:], strict=True):
        wire = json.loads(text, parse_float=Decimal)["data"][0]
        assert isinstance(event, BookUpdate)
        for side, levels in (("bids", event.bids), ("asks", event.asks)):
            assert [(str(lv.price), str(lv.qty)) for lv in levels] == [
                (str(row["price"]), str(row["qty"])) for row in wire[side]
            ]
        assert (event.checksum, event.ts) == (wire["checksum"], parse_timestamp(wire["timestamp"]))


def test_level_digits_reads_exponent_form_as_fixed_point() -> None:
    assert level_digits(Decimal("1E+2"), Decimal("1E-8")) == "100" + "1"
    assert level_digits(Decimal("63502.0"), Decimal("0.01500000")) == "635020" + "1500000"


_SPECIAL_NUMBERS = [
    "NaN", "sNaN", "-NaN", "Infinity", "-Infinity", "-1", "-0", "0", "0.0", "0E-40", "0E-41", "0E+40",
    "0E+41", "1E-40", "1E-41", "9.99E-41", "1E+40", "9.99E+40", "1E+41", "1E-7", "0.000001", "1E+2",
    "1" * 41, "1" * 42, "1" * 41 + ".5", "0." + "0" * 39 + "1", "63502.0", "0.01500000", "000.5",
]  # fmt: skip


@pytest.mark.parametrize("position", ["price", "qty"])
def test_kraken_book_refuses_exactly_what_level_is_sane_refuses(position: str) -> None:
    rng = random.Random(9)
    values = _SPECIAL_NUMBERS + [
        f"{rng.choice(['', '-'])}{rng.randint(0, 10 ** rng.randint(0, 45))}E{rng.randint(-50, 50)}"
        for _ in range(3000)
    ]
    for value in values:
        price, qty = (
            (Decimal(value), Decimal("1.5")) if position == "price" else (Decimal("2.5"), Decimal(value))
        )
        book = KrakenBook(10)
        try:
            applied = book.apply_wire([BookLevel(price=price, qty=qty)], [])
        except KrakenBookError as exc:
            assert not level_is_sane(price, qty), value
            assert "is not a sane positive number" in exc.message
            continue
        assert level_is_sane(price, qty), value
        assert applied == ((Level(price, qty),), ())
        assert book.top_text(10) == ("", level_digits(price, qty) if qty else "")


def test_kraken_book_digits_keep_trailing_zeros_and_read_exponent_form() -> None:
    book = KrakenBook(10)
    wire = [
        BookLevel(price=Decimal("0.0000500"), qty=Decimal("1E-7")),  # exponent qty: fixed-point digits
        BookLevel(price=Decimal("1E+2"), qty=Decimal("2.50000000")),  # exponent price
        BookLevel(price=Decimal("63502.0"), qty=Decimal("0.01500000")),
    ]
    book.apply_wire([], wire)
    assert book.top_text(10) == ("500" + "1" + "100" + "250000000" + "635020" + "1500000", "")
    book.apply_wire([], [BookLevel(price=Decimal("100.00"), qty=Decimal("0E-8"))])  # delete, other digits
    assert book.top_text(10) == ("500" + "1" + "635020" + "1500000", "")


def test_kraken_book_is_cut_to_depth_and_checksums_the_top_ten_only() -> None:
    book = KrakenBook(25)
    asks = [BookLevel(price=Decimal(f"{100 + i}.0"), qty=Decimal("1.00")) for i in range(30)]
    bids = [BookLevel(price=Decimal(f"{99 - i}.0"), qty=Decimal("2.00")) for i in range(30)]
    book.apply_wire(bids, asks)
    assert len(book) == 50
    top = [(lv.price, lv.qty) for lv in asks[:10]], [(lv.price, lv.qty) for lv in bids[:10]]
    assert book.checksum() == book_checksum(*top)


def test_insane_book_level_on_a_live_book_resyncs_it(kraken_dir: Path) -> None:
    # The level before the bad one is applied before the bad one is seen: the book cannot be
    # trusted any more, so it is rebuilt from a fresh snapshot (as for a checksum mismatch).
    sub = Subscription(venue="kraken", channel=Channel.BOOK, symbol="BTC/USD", depth=10)
    session = KrakenWsSession(private=False, wall_clock=lambda: 5.0)
    session.add(sub, 0.0)
    session.connection_made(0.0)
    session.data_to_send()
    texts = _frames(kraken_dir)
    session.receive_text(texts[0], 1.0)
    session.signals_received()
    session.events_received()
    bad = (
        '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":63400.1,'
        '"qty":0.5},{"price":"NaN","qty":1}],"asks":[],"checksum":1,"timestamp":"2026-07-07T23:00:04.031158Z"}]}'
    )
    session.receive_text(bad, 1.1)
    bad_frame, resyncing = session.signals_received()
    assert isinstance(bad_frame, BadFrame) and "not a sane positive number" in bad_frame.error.message
    assert isinstance(resyncing, Resyncing) and resyncing.sub == sub
    (status,) = session.events_received()
    assert isinstance(status, StreamStatus) and status.state is StreamState.RESYNCING
    assert session.book(sub) is None
    assert [json.loads(frame)["method"] for frame in session.data_to_send()] == ["unsubscribe", "subscribe"]
    session.receive_text(texts[1], 1.2)  # updates wait for the fresh snapshot
    assert session.events_received() == []
    session.receive_text(texts[0], 1.3)
    snapshot, live = session.events_received()
    assert isinstance(snapshot, BookSnapshot) and isinstance(live, StreamStatus)
    assert live.state is StreamState.LIVE and session.book(sub) is not None


def test_top_text_needs_a_book_built_with_level_text() -> None:
    with pytest.raises(ValueError, match="level_text"):
        OrderBook(10).top_text(10)


def test_book_frame_decodes_the_same_whichever_key_comes_first(kraken_dir: Path) -> None:
    for text in _frames(kraken_dir)[:50]:
        fast = parse_ws_frame(text)  # starts with "channel": the one-pass route
        body = json.loads(text)
        reordered = json.dumps({"type": body["type"], "data": body["data"], "channel": "book"})
        assert parse_ws_frame(reordered) == fast


@pytest.mark.parametrize(
    "data",
    [
        '[{"symbol":"BTC/USD","bids":[{"price":"NaN","qty":1}],"asks":[]}]',
        '[{"symbol":"BTC/USD","bids":[],"asks":[{"price":1,"qty":"Infinity"}]}]',
        '[{"symbol":"BTC/USD","bids":[{"price":1e41,"qty":1}],"asks":[]}]',
        '[{"symbol":"BTC/USD","bids":[{"price":1,"qty":0e-99}],"asks":[]}]',
        '[{"symbol":"BTC/USD","bids":[{"price":-1,"qty":1}],"asks":[]}]',
        '[{"symbol":"BTC/USD","bids":[{"price":1,"qty":-0.5}],"asks":[]}]',
        '[{"symbol":"BTC/USD","bids":[], "asks":[{"price":[],"qty":1}]}]',
    ],
)
def test_insane_book_numbers_are_refused_on_the_fast_route(data: str) -> None:
    with pytest.raises(ProtocolError):
        parse_ws_frame('{"channel":"book","type":"update","data":' + data + "}")


def test_timestamp_parser_gives_parse_timestamps_float() -> None:
    parse = TimestampParser()
    rng = random.Random(8)
    stamps = [
        f"2026-07-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:"
        f"{rng.randint(0, 59):02d}.{rng.randint(0, 999_999):06d}Z"
        for _ in range(5000)
    ]
    stamps += ["2026-07-07T23:00:04Z", "2026-07-07T23:00:04.031158+00:00", "1969-12-31T23:59:59.500000Z"]
    stamps += ["2026-07-07T23:00:04.031158", "2026-07-07T23:00:04.03115Z", "2026-07-07T23:00:04.0311580Z"]
    for stamp in sorted(stamps) + stamps:  # sorted: the cached second is reused
        assert parse(stamp) == parse_timestamp(stamp), stamp


@pytest.mark.parametrize(
    "bad",
    [
        "2026-07-07T23:00:04.03115٣Z",
        "2026-07-07T23:00:0٤.031158Z",
        "2026-07-07T25:00:04.031158Z",
        "2026-07-07T23:00:04.+31158Z",
        "2026-07-07T23:00:04. 31158Z",
        "2026-07-07T23:00:04.3_1158Z",
        "garbage",
    ],
)
def test_timestamp_parser_refuses_what_parse_timestamp_refuses(bad: str) -> None:
    parse = TimestampParser()
    for warm in ("", "2026-07-07T23:00:04.000001Z"):  # with and without that second cached
        if warm:
            parse(warm)
        with pytest.raises(ProtocolError):
            parse(bad)


def test_primary_number_check_agrees_with_the_generic_walk() -> None:
    rng = random.Random(5)
    specials = [
        "NaN",
        "Infinity",
        "-Infinity",
        "0E-41",
        "0E+40",
        "-0",
        "1E-40",
        "9.99E+40",
        "1E+41",
        "-1E-41",
    ]
    values = specials + [
        f"{rng.choice('-+')}{rng.randint(0, 10**6)}E{rng.randint(-50, 50)}" for _ in range(3000)
    ]
    for value in values:
        for body in (
            {"BI": [{"price": value, "size": 1}]},
            {"OF": [{"price": 1, "size": value}]},
            {"LA": {"price": value, "size": 1, "date": 1}},
            {"CL": value},
        ):
            data = msgspec.json.decode(json.dumps(body), type=MarketData)
            generic_ok = first_insane(data) is None
            try:
                check_market_data(data)
                fast_ok = True
            except ValueError:
                fast_ok = False
            assert fast_ok == generic_ok, (value, body)


class _Lv(msgspec.Struct, frozen=True):
    price: Decimal
    qty: Decimal


def _level(price: str, qty: str) -> _Lv:
    return _Lv(Decimal(price), Decimal(qty))


# ---------------------------------------------------------------- Primary `Md` hot path
#
# The session's shortcuts (one-pass `Md` decode, routes worked out per subscription change, quotes
# and book levels built only when they may have changed, `book()` built on demand) against the
# plain route: every frame decoded through the envelope (bytes skip the one-pass route) and
# normalized by `ticker_from_md` / `book_from_md` / `stats_from_md` with the session's documented
# rule (emit when changed).

PRIMARY_SYMBOLS = ("MERV - XMEV - AL30 - 24hs", "MERV - XMEV - AL30 - CI", "MERV - XMEV - GGAL - 24hs")
PRIMARY_WS = [m for m in captured("primary", "ws_") if '"Md"' in m.text]


def _primary_subs() -> list[Subscription]:
    subs = []
    for index, symbol in enumerate(PRIMARY_SYMBOLS):
        for channel in (Channel.TICKER, Channel.TRADES, Channel.STATS):
            subs.append(Subscription(venue="primary", channel=channel, symbol=symbol))
        for depth in sorted({1, 5, 2 + index}):
            subs.append(Subscription(venue="primary", channel=Channel.BOOK, symbol=symbol, depth=depth))
    return subs


def _plain_levels(rows: list[PriceSize], depth: int) -> tuple[Level, ...]:
    out: list[Level] = []
    for row in rows:
        if row.price is not None and row.size is not None:
            out.append(Level(row.price, row.size))
            if len(out) >= depth:
                break
    return tuple(out)


def _plain_top(rows: list[PriceSize]) -> tuple[Decimal | None, Decimal | None]:
    return next(((row.price, row.size) for row in rows if row.price is not None), (None, None))


class _PlainPrimary:
    """The session's `Md` handling written the plain way (what it was before issue 8): levels and
    quotes row by row, every event built and then compared."""

    def __init__(self, subs: list[Subscription]) -> None:
        self.subs = subs
        self.trades = TradeTracker()
        self.last: dict[tuple[Channel, str, int], object] = {}
        self.books: dict[tuple[str, int], BookSnapshot] = {}

    def _changed(self, key: tuple[Channel, str, int], value: object) -> bool:
        if self.last.get(key) == value:
            return False
        self.last[key] = value
        return True

    def feed(self, text: str, received: float) -> list[AnyEvent] | None:
        """The events of `text`; None when the frame is refused."""
        try:
            frame = parse_primary_frame(text.encode())
        except ProtocolError:
            return None
        subs = [s for s in self.subs if isinstance(frame, MdFrame) and s.symbol == frame.instrumentId.symbol]
        if not isinstance(frame, MdFrame) or not subs:
            return []
        symbol, data = frame.instrumentId.symbol, frame.marketData
        ts = ms_to_seconds(frame.timestamp, received)
        channels = {s.channel for s in subs}
        out: list[AnyEvent] = []
        if Channel.TICKER in channels and data.has(*TICKER_ENTRIES):
            ticker = ticker_from_md(symbol, data, ts=ts)
            last = data.last()
            quote = (
                *_plain_top(data.levels("BI")),
                *_plain_top(data.levels("OF")),
                last.price if last is not None else None,
            )
            assert quote == (ticker.bid, ticker.bid_qty, ticker.ask, ticker.ask_qty, ticker.last)
            if self._changed((Channel.TICKER, symbol, 0), quote):
                out.append(ticker)
        if Channel.BOOK in channels and data.has(*BOOK_ENTRIES):
            for depth in sorted({s.depth for s in subs if s.channel is Channel.BOOK}):
                snapshot = book_from_md(symbol, data, depth=depth, ts=ts)
                bids, asks = _plain_levels(data.levels("BI"), depth), _plain_levels(data.levels("OF"), depth)
                assert (snapshot.bids, snapshot.asks) == (bids, asks)
                self.books[(symbol, depth)] = snapshot
                if self._changed((Channel.BOOK, symbol, depth), (snapshot.bids, snapshot.asks)):
                    out.append(snapshot)
        trade = self.trades.observe(symbol, data, ts=ts)
        if trade is not None and Channel.TRADES in channels:
            out.append(trade)
        if Channel.STATS in channels and data.has(*STATS_ENTRIES):
            stats = stats_from_md(symbol, data, ts=ts)
            if self._changed((Channel.STATS, symbol, 0), msgspec.structs.astuple(stats)[3:]):
                out.append(stats)
        return out


def _one_pass_prefix(text: str) -> str:
    """`text` with the compact `{"type":"Md",` opening the one-pass route looks for."""
    return text.replace('{"type": "Md", ', '{"type":"Md",', 1)


def _assert_session_matches_plain(texts: list[str], *, resubscribe_after: int | None = None) -> None:
    """Feed `texts` to a session and to the plain model; after frame `resubscribe_after`, remove
    and re-add a book subscription (the session then forgets what it emitted for that product's
    books, and so does the model)."""
    subs = _primary_subs()
    session = PrimaryWsSession(wall_clock=lambda: 1_733_169_290.0)
    for sub in subs:
        session.add(sub, 0.0)
    session.connection_made(0.0)
    plain = _PlainPrimary(subs)
    for index, text in enumerate(texts):
        session.receive_text(text, float(index))
        expected = plain.feed(text, 1_733_169_290.0)
        if index == resubscribe_after:
            book_sub = next(sub for sub in subs if sub.channel is Channel.BOOK)
            session.remove(book_sub, 0.0)
            session.add(book_sub, 0.0)
            for key in [k for k in plain.last if k[:2] == (Channel.BOOK, book_sub.symbol)]:
                del plain.last[key]
            session.data_to_send()
        refused = [s for s in session.signals_received() if isinstance(s, BadFrame)]
        assert (expected is None) == bool(refused), text[:200]
        assert session.events_received() == (expected or []), text[:200]
        for sub in subs:
            book = session.book(sub)
            snapshot = plain.books.get((sub.symbol or "", sub.depth))
            if sub.channel is not Channel.BOOK or snapshot is None:
                assert book is None
                continue
            assert book is not None
            reference = OrderBook(sub.depth)
            reference.replace(snapshot.bids, snapshot.asks)
            assert (book.bids_levels(), book.asks_levels()) == (
                reference.bids_levels(),
                reference.asks_levels(),
            )
            # Equal is not enough: the digits kept must be the latest frame's (1.0 vs 1.00).
            assert [str(lv.price) for lv in book.asks_levels()] == [
                str(lv.price) for lv in reference.asks_levels()
            ]


def _md(symbol: str, bids: list[object], asks: list[object], last: object = None) -> str:
    data: dict[str, object] = {"BI": bids, "OF": asks}
    if last is not None:
        data["LA"] = last
    return json.dumps(
        {"type": "Md", "timestamp": 1733169290243, "instrumentId": {"marketId": "ROFX", "symbol": symbol},
         "marketData": data},
        separators=(",", ":"),
    )  # fmt: skip


def test_primary_session_gives_the_plain_events_on_the_captured_frames() -> None:
    texts = [m.text for m in PRIMARY_WS]
    assert texts and all(t.startswith('{"type":"Md",') for t in texts)  # the one-pass route is taken
    _assert_session_matches_plain(texts * 3)


def test_primary_session_gives_the_plain_events_when_rows_repeat_change_or_lack_values() -> None:
    al30 = PRIMARY_SYMBOLS[0]
    level = {"price": 76820, "size": 2569}
    texts = [
        _md(al30, [level], [{"price": 76830, "size": 1}]),
        _md(al30, [level], [{"price": 76830, "size": 1}]),  # same rows: nothing new
        _md(al30, [{"price": 76820.0, "size": 2569}], [{"price": 76830, "size": 1}]),  # equal, new digits
        _md(al30, [{"price": None, "size": 5}, level, {"price": 76810, "size": 3}], []),  # a row skipped
        _md(al30, [level, {"price": 76810}], [{"size": 7}, {"price": 76831, "size": 2}]),
        _md(al30, [], [], {"price": 76830, "size": 1, "date": 1733169288000}),
        _md(al30, [], [], {"price": 76830, "size": 2, "date": 1733169289000}),  # a trade
        _md(al30, [level] * 7, [{"price": 76830 + i, "size": i + 1} for i in range(7)]),  # deeper than 5
        _md(al30, [level] * 7, [{"price": 76830 + i, "size": i + 1} for i in range(7)]),
        _md(al30, [level], [{"price": "NaN", "size": 1}]),  # refused
        _md(al30, [level], [{"price": 76830, "size": 1}]),
        _md(al30, [level], [{"price": 76830, "size": 1}]),
    ]
    _assert_session_matches_plain(texts)
    _assert_session_matches_plain(texts, resubscribe_after=len(texts) - 2)  # same rows after it


@fuzz_settings
@given(
    st.lists(
        st.sampled_from(PRIMARY_WS).flatmap(lambda m: st.one_of(st.just(m.text), mutated(m))),
        min_size=1,
        max_size=8,
    )
)
def test_primary_session_gives_the_plain_events_on_mutated_frames(texts: list[str]) -> None:
    _assert_session_matches_plain([_one_pass_prefix(t) for t in texts])


@pytest.mark.parametrize(
    "text",
    [
        '{"type":"Md","instrumentId":{"symbol":"X"},"status":"ERROR","description":"Access Denied"}',
        '{"type":"Md","instrumentId":{"symbol":"X"},"st\\u0061tus":"ERROR","description":"Access Denied"}',
        '{"type":"Md","instrumentId":{"symbol":"X"},"type":"or"}',
        '{"type":"Md","instrumentId":{"symbol":"X"},"type":"MD"}',
        '{"type":"Md","instrumentId":{"symbol":"X"},"marketData":{"BI":[{"price":1e99,"size":1}]}}',
        '{"type":"Md","instrumentId":{"symbol":"X"},"marketData":{"OF":[{"price":1,"size":"Infinity"}]}}',
        '{"type":"Md","instrumentId":{"symbol":"X"},"marketData":{"LA":{"price":1,"date":1e16}}}',
        '{"type":"Md","instrumentId":{"symbol":"X"},"marketData":{"CL":"NaN"}}',
        '{"type":"Md","instrumentId":{"symbol":"X"},"marketData":{"BI":[{"price":-1,"size":0}]}}',
        '{"type":"Md","instrumentId":{"symbol":"X"},"marketData":{"BI":[{"price":1,"size":1}',
        '{"type":"Md","instrumentId":{}}',
    ],
)
def test_primary_one_pass_decode_answers_as_the_envelope_route(text: str) -> None:
    def outcome(frame_text: str | bytes) -> object:
        try:
            return parse_primary_frame(frame_text)
        except ProtocolError as exc:
            return exc.message

    assert outcome(text) == outcome(text.encode())  # bytes take the envelope route
