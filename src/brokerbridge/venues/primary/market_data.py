"""The `Md` fast path of `PrimaryWsSession`: market-data frames to tickers, books, trades, stats.

`Md` frames are nearly all a Primary socket carries, so they take a hot path (bench/README.md §1):
decoded in one pass with the book sides left as text (`messages.parse_md_lazily`); a side whose
text equals the product's previous one gives the levels worked out then (the live feed's common
case: `LA` moves, the book does not); a side that changed is decoded, and its numbers checked while
it becomes levels. A product whose sides both changed is decoded whole next time (one decode costs
less than three) until a side repeats. Any doubt about a number or the shape → `parse_ws_frame` on
the text gives the verdict, so a frame is refused exactly when the general route refuses it.

Events are emitted when they change: a `Ticker` when bid/ask/last (or their sizes) change, a
`BookSnapshot` when the levels at that depth change, `SessionStats` when any figure changes, a
`Trade` when `LA` changes (see `normalize.TradeTracker`). The first message of each connection
always emits (consumers get a fresh value after a reconnect).

Every book depth of a product is cut from its one stream; while a deeper `smd` is on its way,
`Deepening` decides which frames are certainly whole books of a deeper depth (the session's
module docstring says why).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import msgspec
from msgspec import UNSET

from brokerbridge.core.events import AnyEvent, BookSnapshot, Channel, Level, Subscription
from brokerbridge.core.signals import Subscribed
from brokerbridge.venues.primary.messages import (
    EntryValue,
    LazyMdFrame,
    Levels,
    MdEntries,
    MdFrame,
    parse_rows,
    parse_ws_frame,
)
from brokerbridge.venues.primary.normalize import (
    STATS_ENTRIES,
    TradeTracker,
    checked_levels,
    stats_from_md,
    ticker_of,
    top_of,
    valid_levels,
)
from brokerbridge.venues.session_base import VenueSession

Sides = tuple[tuple[Level, ...], tuple[Level, ...]]  # (bids, asks)
_Top = tuple[Decimal | None, Decimal | None]  # a book side's first (price, size)
_NO_TOP: _Top = (None, None)
_NEVER = msgspec.Raw(b"!")  # not JSON: no frame's side has this text
# Change-detection keys: (channel value, symbol, depth). The channel's str value, not the Enum:
# hashing an Enum runs Python code, and these keys are hashed several times per Md frame.
EmitKey = tuple[str, str, int]


class _SidesMemo:
    """A product's book sides as last received: their JSON text, levels and top (see `_side`)."""

    __slots__ = ("ask", "asks", "bid", "bids", "raw_bi", "raw_of")

    def __init__(self) -> None:
        self.keep(_NEVER, (), _NO_TOP, _NEVER, (), _NO_TOP)

    def keep(
        self,
        raw_bi: msgspec.Raw,
        bids: tuple[Level, ...],
        bid: _Top,
        raw_of: msgspec.Raw,
        asks: tuple[Level, ...],
        ask: _Top,
    ) -> None:
        """Remember a frame's sides; `_NEVER` for a text not known (equal to no side's text)."""
        self.raw_bi, self.bids, self.bid = raw_bi, bids, bid
        self.raw_of, self.asks, self.ask = raw_of, asks, ask


def _side(raw: msgspec.Raw, text: str) -> tuple[tuple[Level, ...], _Top]:
    """`_checked_side` of a side `parse_md_lazily` left as text."""
    try:
        rows = parse_rows(raw)
    except ValueError:
        parse_ws_frame(text)  # raises: the frame's shape is wrong
        raise
    return _checked_side(rows, text)


def _checked_side(rows: Levels, text: str) -> tuple[tuple[Level, ...], _Top]:
    """One book side of an `Md` frame whose rows are not checked yet: its levels (rows that have a
    price and a size) and its top (the first row with a price). When a row does not pass the quick
    check, `parse_ws_frame(text)` gives the verdict on the whole frame: it raises the
    `ProtocolError` the frame deserves, or confirms every number."""
    levels = checked_levels(rows)
    if levels is not None:
        return levels, ((levels[0].price, levels[0].qty) if levels else _NO_TOP)
    parse_ws_frame(text)  # a row lacks a price or size, or a number is unusual: the exact check
    return valid_levels(rows), top_of(rows)


class _Route:
    """What an `Md` frame of one product feeds, worked out once per change of its subscriptions
    instead of once per frame."""

    __slots__ = ("book_depths", "stats_key", "subs", "ticker_key", "trades")

    def __init__(self, symbol: str, subs: list[Subscription]) -> None:
        channels = {sub.channel for sub in subs}
        self.subs = tuple(subs)
        self.ticker_key: EmitKey | None = (
            (Channel.TICKER.value, symbol, 0) if Channel.TICKER in channels else None
        )
        depths = sorted({sub.depth for sub in subs if sub.channel is Channel.BOOK})
        # (depth, change-detection key, `_books` key) per book depth subscribed
        self.book_depths = tuple(
            (depth, (Channel.BOOK.value, symbol, depth), (symbol, depth)) for depth in depths
        )
        self.trades = Channel.TRADES in channels
        self.stats_key: EmitKey | None = (
            (Channel.STATS.value, symbol, 0) if Channel.STATS in channels else None
        )


class Deepening:
    """A product whose requested depth grew on this connection (see the module docstring)."""

    __slots__ = ("latest", "old_depths", "until")

    def __init__(self, old_depths: frozenset[int], until: float) -> None:
        self.old_depths = old_depths  # depths requested before: their frames may still arrive
        self.until = until  # when the new depth is taken as streaming in any case
        self.latest: Sides | None = None  # the last sides withheld from a deeper book

    def proven_by(self, bids: int, asks: int) -> bool:
        """A side longer than every old depth comes from the new stream."""
        deepest = max(self.old_depths)
        return bids > deepest or asks > deepest

    def serves(self, depth: int, bids: int, asks: int) -> bool:
        """Whether a frame with sides of these lengths is a whole book of `depth`: each side is long
        enough, or of a length that no old request cuts a side to (the whole side, then)."""
        old = self.old_depths
        return (bids >= depth or bids not in old) and (asks >= depth or asks not in old)


class MarketData(VenueSession):
    """`Md` frames in, what they changed out; the products' market-data subscriptions and their
    per-connection state (reset by `_reset_market_data`)."""

    def __init__(self, *, venue: str, wall_clock: Callable[[], float]) -> None:
        super().__init__(venue=venue, wall_clock=wall_clock)
        self._by_symbol: dict[str, list[Subscription]] = {}  # market-data subs per product
        self._routes: dict[str, _Route] = {}  # built from _by_symbol on first use; dropped on change
        self.trades = TradeTracker()

    def _reset_market_data(self, now: float) -> None:
        self._unconfirmed: dict[Subscription, float] = {}  # sub → when its smd/os was queued
        self._seen_products: set[str] = set()  # products with an Md on this connection
        self._last_emitted: dict[EmitKey, object] = {}
        # The latest levels per (product, depth): book() builds its OrderBook from them on demand,
        # not every frame (Primary sends whole snapshots, so nothing is applied incrementally).
        self._books: dict[tuple[str, int], Sides] = {}
        self._sides: dict[str, _SidesMemo] = {}  # per product: its last book sides (as text too)
        self._churning: set[str] = set()  # products whose last frame changed both book sides
        self._deepening: dict[str, Deepening] = {}  # products whose book depth grew: old frames due

    def _confirm(self, sub: Subscription) -> None:
        self._unconfirmed.pop(sub, None)
        self._signals.append(Subscribed(sub))

    def _on_lazy_md(self, frame: LazyMdFrame, text: str) -> None:
        """An `Md` frame of the one-pass route: a book side whose text equals the product's previous
        one gives the levels worked out then; one that changed is decoded and checked now."""
        data = frame.marketData
        symbol = frame.instrumentId.symbol
        raw_bi, raw_of = data.BI, data.OF
        memo = self._memo(symbol)
        same_bi, same_of = raw_bi == memo.raw_bi, raw_of == memo.raw_of
        bids, bid = (memo.bids, memo.bid) if same_bi else _side(raw_bi, text)
        asks, ask = (memo.asks, memo.ask) if same_of else _side(raw_of, text)
        # Only now, both sides having passed: a side is remembered only once its frame is accepted.
        if not (same_bi or same_of or memo.raw_bi is _NEVER):
            self._churning.add(symbol)  # both sides changed: decode its next frame whole
        memo.keep(raw_bi, bids, bid, raw_of, asks, ask)
        self._route_md(symbol, frame.timestamp, data, bool(raw_bi) or bool(raw_of), bids, asks, bid, ask)

    def _on_churning_md(self, frame: MdFrame, text: str) -> None:
        """An `Md` frame of a product whose book sides both changed last time, decoded whole by
        `parse_md_rows_unchecked`: its rows checked here. Back to the lazy route once a side
        stays the same."""
        data = frame.marketData
        symbol = frame.instrumentId.symbol
        rows_bi, rows_of = data.BI, data.OF
        bids, bid = _checked_side(rows_bi, text)
        asks, ask = _checked_side(rows_of, text)
        memo = self._memo(symbol)
        if bids == memo.bids or asks == memo.asks:
            self._churning.discard(symbol)
        # The texts are unknown: the next lazy frame decodes both sides (and does not count that).
        memo.keep(_NEVER, bids, bid, _NEVER, asks, ask)
        has_book = rows_bi is not UNSET or rows_of is not UNSET
        self._route_md(symbol, frame.timestamp, data, has_book, bids, asks, bid, ask)

    def _memo(self, symbol: str) -> _SidesMemo:
        memo = self._sides.get(symbol)
        if memo is None:
            memo = self._sides[symbol] = _SidesMemo()
        return memo

    def _on_md(self, frame: MdFrame) -> None:
        """An `Md` frame `parse_ws_frame` decoded (and checked)."""
        data = frame.marketData
        rows_bi, rows_of = data.BI, data.OF
        self._route_md(
            frame.instrumentId.symbol,
            frame.timestamp,
            data,
            rows_bi is not UNSET or rows_of is not UNSET,
            valid_levels(rows_bi),
            valid_levels(rows_of),
            top_of(rows_bi),
            top_of(rows_of),
        )

    def _route_md(
        self,
        symbol: str,
        timestamp: float | None,
        data: MdEntries,
        has_book: bool,
        bids: tuple[Level, ...],
        asks: tuple[Level, ...],
        bid: _Top,
        ask: _Top,
    ) -> None:
        """Emit what one `Md` frame changed for the product's subscriptions. `bids`/`asks`: its
        book rows that have a price and a size; `bid`/`ask`: the first rows with a price."""
        route = self._routes.get(symbol)
        if route is None:
            subs = self._by_symbol.get(symbol)
            if not subs:
                return  # removed (still streamed until reconnect) or never asked for
            route = self._routes[symbol] = _Route(symbol, subs)
        if symbol not in self._seen_products:
            self._seen_products.add(symbol)
        if self._unconfirmed:
            for sub in route.subs:
                if sub in self._unconfirmed:
                    self._confirm(sub)
        ts = self._wall_clock() if timestamp is None else timestamp / 1000.0
        last = data.LA
        la = last if isinstance(last, EntryValue) else None
        # The quote serves the ticker and the trade side inference alike.
        quote = (bid[0], bid[1], ask[0], ask[1], None if la is None else la.price)
        # Events are built from a batch before any state changes, so a failure skips the whole frame.
        events: list[AnyEvent] = []
        last_emitted = self._last_emitted
        key = route.ticker_key
        if key is not None and (has_book or last is not UNSET) and last_emitted.get(key) != quote:
            last_emitted[key] = quote
            events.append(ticker_of(symbol, quote, data, ts=ts, venue=self.venue))
        if has_book:
            deepening = self._deepening.get(symbol) if self._deepening else None
            if deepening is not None:
                if deepening.proven_by(len(bids), len(asks)):
                    del self._deepening[symbol]
                    deepening = None
                else:
                    deepening.latest = None  # the sides withheld from a deeper book, if any are
            for depth, key, book_key in route.book_depths:
                if deepening is not None and not deepening.serves(depth, len(bids), len(asks)):
                    deepening.latest = (bids, asks)  # maybe of an old depth: not a book of this one
                    continue
                sides = self._books[book_key] = (bids[:depth], asks[:depth])
                if last_emitted.get(key) != sides:
                    last_emitted[key] = sides
                    events.append(
                        BookSnapshot(
                            venue=self.venue, ts=ts, symbol=symbol, depth=depth, bids=sides[0], asks=sides[1]
                        )
                    )
        trade = self.trades.observe_last(symbol, la, quote if has_book else None, ts, self.venue)
        if trade is not None and route.trades:
            events.append(trade)
        if route.stats_key is not None and data.has(*STATS_ENTRIES):
            stats = stats_from_md(symbol, data, ts=ts, venue=self.venue)
            figures = msgspec.structs.astuple(stats)[3:]  # every figure (not venue/ts/symbol)
            if self._changed(route.stats_key, figures):
                events.append(stats)
        self._events.extend(events)

    def _serve_withheld(self, symbol: str, bids: tuple[Level, ...], asks: tuple[Level, ...]) -> None:
        """The product's deeper books, from the last frame withheld from them: by now Primary has
        answered the deeper `smd`, so that frame was of the new depth."""
        route = self._routes.get(symbol)
        if route is None:
            return
        for depth, key, book_key in route.book_depths:
            sides = self._books[book_key] = (bids[:depth], asks[:depth])
            if self._last_emitted.get(key) != sides:
                self._last_emitted[key] = sides
                self._events.append(
                    BookSnapshot(
                        venue=self.venue,
                        ts=self._wall_clock(),
                        symbol=symbol,
                        depth=depth,
                        bids=sides[0],
                        asks=sides[1],
                    )
                )

    def _changed(self, key: EmitKey, value: object) -> bool:
        if self._last_emitted.get(key) == value:
            return False
        self._last_emitted[key] = value
        return True
