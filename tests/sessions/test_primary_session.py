"""PrimaryWsSession driven in memory: captured frames in, events/signals/frames out, explicit time."""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brokerbridge.core.errors import (
    InternalError,
    PermissionDenied,
    ProtocolError,
    SessionInvalid,
    UnknownOrder,
    UnknownSymbol,
)
from brokerbridge.core.events import (
    BookSnapshot,
    Channel,
    Fill,
    Level,
    OrderUpdate,
    SessionStats,
    Side,
    Subscription,
    Ticker,
    Trade,
)
from brokerbridge.core.signals import OrderAnswered
from brokerbridge.venues.primary.session import (
    BadFrame,
    PrimaryWsSession,
    ReconnectNeeded,
    Subscribed,
    SubscribeFailed,
    TokenRejected,
)

WALL = 1_800_000_000.0
AL30 = "MERV - XMEV - AL30 - 24hs"
AL30_CI = "MERV - XMEV - AL30 - CI"
GGAL = "MERV - XMEV - GGAL - 24hs"


def fixture_dir() -> Path:
    env = os.environ.get("BROKERBRIDGE_FIXTURES")
    if env:
        return Path(env) / "primary"
    return Path(__file__).parents[1] / "fixtures" / "primary"


def fixture_lines(name: str) -> list[str]:
    path = fixture_dir() / name
    assert path.is_file(), (
        f"Primary fixture {path} missing (cp -r ../shared/fixtures/primary tests/fixtures/)"
    )
    text = path.read_text()
    return text.splitlines() if path.suffix == ".jsonl" else [text]


def sub(channel: Channel, symbol: str | None = None, depth: int = 1) -> Subscription:
    return Subscription(venue="primary", channel=channel, symbol=symbol, depth=depth)


def session(*subs: Subscription, connect: bool = True, **kwargs: object) -> PrimaryWsSession:
    s = PrimaryWsSession(wall_clock=lambda: WALL, account="12345", **kwargs)  # type: ignore[arg-type]
    for one in subs:
        s.add(one, 0.0)
    if connect:
        s.connection_made(0.0)
    return s


def sent(s: PrimaryWsSession) -> list[dict[str, object]]:
    return [json.loads(frame) for frame in s.data_to_send()]


def md(symbol: str, ts: int = 1_733_169_290_243, **entries: Any) -> str:
    return json.dumps(
        {
            "type": "Md",
            "timestamp": ts,
            "instrumentId": {"marketId": "ROFX", "symbol": symbol},
            "marketData": entries,
        }
    )


# ---------------------------------------------------------------- subscribe frames


def test_connection_groups_products_by_entries_and_depth() -> None:
    s = session(
        sub(Channel.TICKER, AL30),
        sub(Channel.BOOK, AL30, depth=5),
        sub(Channel.TRADES, GGAL),
        sub(Channel.STATS, GGAL),
        sub(Channel.TICKER, AL30_CI),
        sub(Channel.EXECUTIONS),
    )
    frames = sent(s)
    assert frames == [
        {
            "type": "smd",
            "level": 1,
            "depth": 5,
            "entries": ["BI", "OF", "LA"],
            "products": [{"symbol": AL30, "marketId": "ROFX"}],
        },
        {
            "type": "smd",
            "level": 1,
            "depth": 1,
            "entries": ["LA", "OP", "CL", "SE", "HI", "LO", "TV", "OI", "IV", "EV", "NV", "TC"],
            "products": [{"symbol": GGAL, "marketId": "ROFX"}],
        },
        {
            "type": "smd",
            "level": 1,
            "depth": 1,
            "entries": ["BI", "OF", "LA"],
            "products": [{"symbol": AL30_CI, "marketId": "ROFX"}],
        },
        {"type": "os", "account": {"id": "12345"}, "snapshotOnlyActive": True},
    ]
    # Executions are confirmed once `os` is queued (Primary acks nothing).
    assert s.signals_received() == [Subscribed(sub(Channel.EXECUTIONS))]


def test_smd_batches_at_most_1000_products() -> None:
    subs = [sub(Channel.TICKER, f"SYM{i:04d}") for i in range(2500)]
    frames = sent(session(*subs))
    assert [len(f["products"]) for f in frames] == [1000, 1000, 500]  # type: ignore[arg-type]
    symbols = [p["symbol"] for f in frames for p in f["products"]]  # type: ignore[attr-defined]
    assert symbols == [f"SYM{i:04d}" for i in range(2500)]


def test_exact_smd_bytes_match_pyrofex() -> None:
    s = session(sub(Channel.TICKER, "DLR/DIC23"))
    assert s.data_to_send() == [
        '{"type":"smd","level":1,"depth":1,"entries":["BI","OF","LA"],'
        '"products":[{"symbol":"DLR/DIC23","marketId":"ROFX"}]}'
    ]


def test_add_while_connected_sends_only_what_grew() -> None:
    s = session()
    assert sent(s) == []
    s.add(sub(Channel.TRADES, AL30), 1.0)
    assert sent(s) == [
        {
            "type": "smd",
            "level": 1,
            "depth": 1,
            "entries": ["LA"],
            "products": [{"symbol": AL30, "marketId": "ROFX"}],
        }
    ]
    # Ticker needs BI/OF too: the union is requested again for this product only.
    s.add(sub(Channel.TICKER, AL30), 2.0)
    assert sent(s) == [
        {
            "type": "smd",
            "level": 1,
            "depth": 1,
            "entries": ["BI", "OF", "LA"],
            "products": [{"symbol": AL30, "marketId": "ROFX"}],
        }
    ]
    # A depth-1 book is covered by what was requested: nothing to send.
    s.add(sub(Channel.BOOK, AL30, depth=1), 3.0)
    assert sent(s) == []
    # A deeper book is not.
    s.add(sub(Channel.BOOK, AL30, depth=3), 4.0)
    assert [(f["depth"], f["entries"]) for f in sent(s)] == [(3, ["BI", "OF", "LA"])]


def test_remove_stops_routing_and_reconnect_requests_only_what_is_left() -> None:
    ticker, trades = sub(Channel.TICKER, AL30), sub(Channel.TRADES, GGAL)
    s = session(ticker, trades)
    s.data_to_send()
    s.remove(ticker, 1.0)
    assert s.data_to_send() == []  # Primary has no unsubscribe
    s.receive_text(md(AL30, BI=[{"price": 1, "size": 1}], OF=[], LA=None), 1.1)
    assert s.events_received() == []
    assert s.subscriptions == (trades,)
    s.connection_lost(2.0)
    assert s.next_deadline() is None
    s.connection_made(3.0)
    assert [f["products"] for f in sent(s)] == [[{"symbol": GGAL, "marketId": "ROFX"}]]


def test_validate_refuses_what_primary_cannot_serve() -> None:
    s = PrimaryWsSession(wall_clock=lambda: WALL)
    with pytest.raises(ValueError, match=r"depth must be 1\.\.5"):
        s.validate(sub(Channel.BOOK, AL30, depth=10))
    with pytest.raises(ValueError, match="no balance stream"):
        s.validate(sub(Channel.BALANCES))
    with pytest.raises(ValueError, match="needs a symbol"):
        s.validate(sub(Channel.TICKER))
    with pytest.raises(ValueError, match="takes no symbol"):
        s.validate(sub(Channel.EXECUTIONS, "12345"))
    with pytest.raises(ValueError):
        s.add(sub(Channel.CANDLES, AL30), 0.0)
    assert s.subscriptions == ()


# ---------------------------------------------------------------- captured market data


def test_ws_md_al30_yields_ticker_book_and_trades() -> None:
    ticker, book, trades = (
        sub(Channel.TICKER, AL30),
        sub(Channel.BOOK, AL30, depth=5),
        sub(Channel.TRADES, AL30),
    )
    ci = sub(Channel.TICKER, AL30_CI)
    s = session(ticker, book, trades, ci)
    s.data_to_send()
    for i, line in enumerate(fixture_lines("ws_md_al30.jsonl")):
        s.receive_text(line, 1.0 + i)
    events = s.events_received()
    assert set(s.signals_received()) == {
        Subscribed(ticker),
        Subscribed(book),
        Subscribed(trades),
        Subscribed(ci),
    }

    tickers = [e for e in events if isinstance(e, Ticker) and e.symbol == AL30]
    # Emitted on change only: the first frame, then each change of the offer size.
    assert [(t.ask_qty, t.ts) for t in tickers] == [
        (Decimal("64364"), 1733169290.243),
        (Decimal("60484"), 1733169291.961),
        (Decimal("56363"), 1733169294.097),
    ]
    first = tickers[0]
    assert (first.bid, first.bid_qty, first.ask, first.last) == (
        Decimal("76820"),
        Decimal("2569"),
        Decimal("76830"),
        Decimal("76830"),
    )
    assert first.volume is None and first.vwap is None

    books = [e for e in events if isinstance(e, BookSnapshot)]
    assert len(books) == 3 and all(b.depth == 5 and b.checksum is None for b in books)
    assert books[0].bids == (Level(Decimal("76820"), Decimal("2569")),)
    assert books[-1].asks == (Level(Decimal("76830"), Decimal("56363")),)
    assert s.book(book) is not None and s.book(book).best_ask() == Level(Decimal("76830"), Decimal("56363"))  # type: ignore[union-attr]

    # The first LA is a baseline; every later change of (date, price, size) is one trade.
    got = [(t.ts, t.price, t.qty) for t in events if isinstance(t, Trade)]
    assert got == [
        (1733169290.0, Decimal("76830"), Decimal("2491")),
        (1733169290.0, Decimal("76830"), Decimal("1389")),
        (1733169293.0, Decimal("76830"), Decimal("2857")),
        (1733169293.0, Decimal("76830"), Decimal("2363")),
    ]
    # At the offer: buyer-initiated (quote rule).
    assert {t.side for t in events if isinstance(t, Trade)} == {Side.BUY}
    ci_tickers = [e for e in events if isinstance(e, Ticker) and e.symbol == AL30_CI]
    assert [(t.bid, t.ask, t.last) for t in ci_tickers] == [
        (Decimal("76790"), Decimal("76800"), Decimal("76790"))
    ]


def test_empty_bids_give_none_and_an_empty_side() -> None:
    symbol = "MERV - XMEV - ALUA - CI"
    s = session(sub(Channel.TICKER, symbol), sub(Channel.BOOK, symbol, depth=5))
    s.receive_text(fixture_lines("ws_md_alua_ci_empty_bids.json")[0], 1.0)
    ticker, book = s.events_received()
    assert isinstance(ticker, Ticker) and isinstance(book, BookSnapshot)
    assert ticker.bid is None and ticker.bid_qty is None
    assert (ticker.ask, ticker.ask_qty, ticker.last) == (
        Decimal("84990.0"),
        Decimal("46"),
        Decimal("23049.0"),
    )
    assert book.bids == () and book.asks == (Level(Decimal("84990.0"), Decimal("46")),)
    assert str(book.asks[0].price) == "84990.0"  # digits kept


def test_null_entries_and_a_side_going_empty() -> None:
    s = session(sub(Channel.TICKER, AL30))
    s.receive_text(md(AL30, BI=[{"price": 10, "size": 1}], OF=[{"price": 11, "size": 2}], LA=None), 1.0)
    s.receive_text(md(AL30, BI=None, OF=[{"price": 11, "size": 2}], LA=None), 2.0)
    first, second = s.events_received()
    assert isinstance(first, Ticker) and isinstance(second, Ticker)
    assert first.bid == Decimal(10) and first.last is None
    assert second.bid is None and second.ask == Decimal(11)


def test_remarkets_future_and_ggal_stats() -> None:
    s = session(sub(Channel.TICKER, "DLR/DIC21"), sub(Channel.STATS, GGAL), sub(Channel.TICKER, GGAL))
    s.receive_text(fixture_lines("ws_md_dlr_dic21_remarkets.json")[0], 1.0)
    s.receive_text(fixture_lines("ws_md_ggal.json")[0], 2.0)
    events = s.events_received()
    dlr = next(e for e in events if isinstance(e, Ticker) and e.symbol == "DLR/DIC21")
    assert (dlr.bid, dlr.ask, dlr.last, dlr.ts) == (
        Decimal("108.25"),
        Decimal("108.45"),
        Decimal("108.35"),
        1632505852.267,
    )
    stats = next(e for e in events if isinstance(e, SessionStats))
    assert (stats.symbol, stats.open, stats.close, stats.high, stats.low) == (
        GGAL,
        Decimal("6880"),
        Decimal("6840"),
        Decimal("7150"),
        Decimal("6880"),
    )
    assert stats.settlement is None and stats.volume is None and stats.open_interest is None
    ggal = next(e for e in events if isinstance(e, Ticker) and e.symbol == GGAL)
    # The captured GGAL frame was for a stats subscription (no LA): ticker high/low come along.
    assert (ggal.bid, ggal.ask, ggal.last, ggal.high, ggal.low) == (
        Decimal("7130"),
        Decimal("7150"),
        None,
        Decimal("7150"),
        Decimal("6880"),
    )


def test_stats_every_figure_and_open_interest_size() -> None:
    s = session(sub(Channel.STATS, "DLR/FEB26"))
    frame = md(
        "DLR/FEB26",
        OP=1450.5,
        CL={"price": 1449, "size": 10, "date": 1},
        SE={"price": 1451.25},
        HI=1460,
        LO=1440,
        TV=12345,
        OI={"price": None, "size": 98765, "date": 2},
        EV=None,
        NV=None,
        TC=321,
        IV=None,
    )
    s.receive_text(frame, 1.0)
    s.receive_text(frame, 2.0)  # unchanged: not repeated
    (stats,) = s.events_received()
    assert isinstance(stats, SessionStats)
    assert stats.settlement == Decimal("1451.25") and stats.volume == Decimal(12345)
    assert stats.open_interest == Decimal(98765) and stats.trade_count == 321
    assert stats.open == Decimal("1450.5") and stats.close == Decimal(1449)


def test_trade_side_inference_below_the_bid_is_a_sell() -> None:
    s = session(sub(Channel.TRADES, AL30), sub(Channel.TICKER, AL30))
    book: dict[str, Any] = {"BI": [{"price": 100, "size": 1}], "OF": [{"price": 102, "size": 1}]}
    s.receive_text(md(AL30, LA={"price": 101, "size": 1, "date": 1000}, **book), 1.0)
    s.receive_text(md(AL30, LA={"price": 100, "size": 5, "date": 2000}, **book), 2.0)
    s.receive_text(md(AL30, LA={"price": 101, "size": 5, "date": 3000}, **book), 3.0)  # inside: tick rule
    trades = [e for e in s.events_received() if isinstance(e, Trade)]
    assert [(t.price, t.side, t.trade_id) for t in trades] == [
        (Decimal(100), Side.SELL, "2000:100:5"),
        (Decimal(101), Side.BUY, "3000:101:5"),
    ]


def test_reconnect_emits_fresh_values_but_no_replayed_trade() -> None:
    s = session(sub(Channel.TICKER, AL30), sub(Channel.TRADES, AL30))
    frame = md(AL30, BI=[{"price": 1, "size": 1}], OF=[], LA={"price": 1, "size": 1, "date": 5})
    s.receive_text(frame, 1.0)
    assert [type(e) for e in s.events_received()] == [Ticker]
    s.connection_lost(2.0)
    s.connection_made(3.0)
    s.receive_text(frame, 4.0)
    assert [type(e) for e in s.events_received()] == [Ticker]  # the same LA is not a new trade
    # A trade made while the socket was down shows as a changed LA after the next reconnect.
    s.connection_lost(5.0)
    s.connection_made(6.0)
    s.receive_text(md(AL30, BI=[{"price": 1, "size": 1}], OF=[], LA={"price": 2, "size": 3, "date": 9}), 7.0)
    assert [(type(e), getattr(e, "qty", None)) for e in s.events_received()] == [
        (Ticker, None),
        (Trade, Decimal(3)),
    ]


# ---------------------------------------------------------------- order reports


def test_or_reports_new_then_filled_give_updates_and_one_fill() -> None:
    execs = sub(Channel.EXECUTIONS)
    s = session(execs)
    lines = fixture_lines("ws_or_al30_new_filled.jsonl")
    for line in lines:
        s.receive_text(line, 1.0)
    new, filled, fill = s.events_received()
    assert isinstance(new, OrderUpdate) and isinstance(filled, OrderUpdate) and isinstance(fill, Fill)
    assert (new.order_id, new.status, new.cum_qty, new.qty, new.limit_price, new.side) == (
        "P43WSKJA40ygo8Bz",
        "new",
        Decimal(0),
        Decimal(1),
        Decimal("5554.5"),
        Side.BUY,
    )
    assert new.ts == 1652712422.226  # transactTime 20220516-11:47:02.226-0300
    assert (filled.status, filled.cum_qty, filled.avg_price) == ("filled", Decimal(1), Decimal("5554.5"))
    assert (fill.order_id, fill.exec_id, fill.symbol, fill.side, fill.price, fill.qty, fill.cost) == (
        "P43WSKJA40ygo8Bz",
        "MERVE0AGJZ1Da7J4",
        AL30_CI,
        Side.BUY,
        Decimal("5554.5"),
        Decimal(1),
        Decimal("5554.5"),
    )
    # The os snapshot replayed after a reconnect repeats the report: no second fill.
    s.connection_lost(2.0)
    s.connection_made(3.0)
    s.receive_text(lines[1], 4.0)
    assert [type(e) for e in s.events_received()] == [OrderUpdate]


def _or(**fields: object) -> str:
    """An `or` frame of a DLR/DIC23 limit buy (request "A" unless `fields` says otherwise)."""
    base = {
        "clOrdId": "A",
        "proprietary": "PBCP",
        "accountId": {"id": "12345"},
        "instrumentId": {"marketId": "ROFX", "symbol": "DLR/DIC23"},
        "price": 180,
        "orderQty": 10,
        "ordType": "LIMIT",
        "side": "BUY",
        "timeInForce": "DAY",
        "transactTime": "20230101-11:00:00.000-0300",
    }
    return json.dumps({"type": "or", "timestamp": 1, "orderReport": {**base, **fields}})


def test_partial_fills_and_cancel_chain_keep_one_order_id() -> None:
    s = session(sub(Channel.EXECUTIONS))

    def report(**fields: object) -> str:
        return _or(**{"price": 180.5, "side": "SELL", **fields})

    s.receive_text(report(orderId=None, status="PENDING_NEW", text="Enviada"), 1.0)
    s.receive_text(report(orderId="9", execId="E1", status="NEW", cumQty=0, text="Aceptada "), 1.0)
    s.receive_text(
        report(orderId="9", execId="E2", status="PARTIALLY_FILLED", cumQty=4, lastPx=180.5, lastQty=4), 1.0
    )
    s.receive_text(
        report(orderId="9", execId="E3", status="PARTIALLY_FILLED", cumQty=7, lastPx=181, lastQty=3), 1.0
    )
    s.receive_text(
        report(
            clOrdId="B",
            origClOrdId="A",
            orderId="9",
            execId="E4",
            status="CANCELLED",
            cumQty=7,
            text="Cancelled by Owner",
        ),
        1.0,
    )
    events = s.events_received()
    updates = [e for e in events if isinstance(e, OrderUpdate)]
    fills = [e for e in events if isinstance(e, Fill)]
    assert {u.order_id for u in updates} == {"A"}
    assert [u.status for u in updates] == [
        "pending_new",
        "new",
        "partially_filled",
        "partially_filled",
        "canceled",
    ]
    assert updates[-1].client_order_id == "B" and updates[-1].reason == "Cancelled by Owner"
    assert [(f.exec_id, f.qty, f.price, f.side) for f in fills] == [
        ("E2", Decimal(4), Decimal("180.5"), Side.SELL),
        ("E3", Decimal(3), Decimal(181), Side.SELL),
    ]


def test_remarkets_new_report_text_and_ids() -> None:
    s = session(sub(Channel.EXECUTIONS))
    s.receive_text(fixture_lines("ws_or_ggal_dic21_remarkets_new.json")[0], 1.0)
    (update,) = s.events_received()
    assert isinstance(update, OrderUpdate)
    assert (update.order_id, update.status, update.symbol, update.qty, update.limit_price) == (
        "eMSofNm4oXL92V_s",
        "new",
        "GGAL/DIC21",
        Decimal(10),
        Decimal("192.0"),
    )
    assert update.reason is None


def test_reports_without_executions_subscription_are_dropped() -> None:
    s = session(sub(Channel.TICKER, AL30))
    s.receive_text(fixture_lines("ws_or_ggal_dic21_remarkets_new.json")[0], 1.0)
    assert s.events_received() == []


# ---------------------------------------------------------------- errors


def test_error_frame_fails_only_that_product_and_keeps_the_socket() -> None:
    bad_ticker, bad_book = sub(Channel.TICKER, "InvalidInstrument"), sub(Channel.BOOK, "InvalidInstrument")
    good = sub(Channel.TICKER, AL30)
    s = session(good, bad_ticker, bad_book)
    s.data_to_send()
    s.receive_text(fixture_lines("ws_md_al30.jsonl")[0], 1.0)
    s.receive_text(fixture_lines("ws_error_unknown_product.json")[0], 1.1)
    signals = s.signals_received()
    assert signals[0] == Subscribed(good)
    failed = signals[1:]
    assert [f.sub for f in failed if isinstance(f, SubscribeFailed)] == [bad_ticker, bad_book]
    for f in failed:
        assert isinstance(f, SubscribeFailed) and isinstance(f.error, UnknownSymbol)
        assert "InvalidInstrument" in f.error.message and not f.error.retryable
    assert s.subscriptions == (good,)
    assert s.data_to_send() == []  # no reconnect, no resubscribe
    s.receive_text(fixture_lines("ws_md_al30.jsonl")[2], 1.2)
    assert s.events_received()  # the good product keeps streaming


def test_rest_wording_and_os_error_and_auth_error() -> None:
    execs, ggal = sub(Channel.EXECUTIONS), sub(Channel.TICKER, GGAL)
    s = session(execs, ggal)
    s.signals_received()
    s.receive_text(
        json.dumps({"status": "ERROR", "description": f"Product {GGAL}:ROFX doesn't exist", "message": None}),
        1.0,
    )
    s.receive_text(
        json.dumps(
            {
                "status": "ERROR",
                "description": "No tiene acceso a la cuenta 12345",
                "message": '{"type":"os","account":{"id":"12345"},"snapshotOnlyActive":true}',
            }
        ),
        1.1,
    )
    (a, b) = s.signals_received()
    assert isinstance(a, SubscribeFailed) and a.sub == ggal and isinstance(a.error, UnknownSymbol)
    assert isinstance(b, SubscribeFailed) and b.sub == execs and isinstance(b.error, PermissionDenied)
    assert s.subscriptions == ()
    s.receive_text('{"status":"ERROR","message":"Access Denied"}', 2.0)
    token, reconnect = s.signals_received()
    assert isinstance(token, TokenRejected) and isinstance(token.error, SessionInvalid)
    assert isinstance(reconnect, ReconnectNeeded)


def test_unknown_error_and_garbage_become_bad_frames() -> None:
    s = session(sub(Channel.TICKER, AL30))
    s.receive_text('{"status":"ERROR","description":"algo raro"}', 1.0)
    s.receive_text("not json", 1.0)
    s.receive_text('{"type":"Xx"}', 1.0)
    s.receive_text(
        '{"type":"Md","instrumentId":{"symbol":"A"},"marketData":{"BI":[{"price":"NaN","size":1}]}}', 1.0
    )
    signals = s.signals_received()
    assert len(signals) == 4 and all(isinstance(x, BadFrame) for x in signals)
    assert isinstance(signals[1].error, ProtocolError)  # type: ignore[union-attr]


# ---------------------------------------------------------------- time: confirmation and watchdog


def test_quiet_product_is_confirmed_after_confirm_after() -> None:
    quiet = sub(Channel.TICKER, "MERV - XMEV - GFGC4500DI - 24hs")
    s = session(quiet, confirm_after=5.0, idle_timeout=100.0)
    assert s.next_deadline() == 5.0
    s.handle_timer(4.9)
    assert s.signals_received() == []
    s.handle_timer(5.0)
    assert s.signals_received() == [Subscribed(quiet)]
    assert s.next_deadline() == 100.0


def test_idle_watchdog_fires_only_while_market_open() -> None:
    open_now = {"value": False}
    s = session(
        sub(Channel.TICKER, AL30),
        idle_timeout=60.0,
        confirm_after=1.0,
        market_open=lambda wall: open_now["value"],
    )
    s.receive_text(fixture_lines("ws_md_al30.jsonl")[0], 10.0)
    s.signals_received()
    assert s.next_deadline() == 70.0
    s.handle_timer(70.0)  # market closed: silence is expected, the window restarts
    assert s.signals_received() == []
    assert s.next_deadline() == 130.0
    open_now["value"] = True
    s.handle_timer(129.0)
    assert s.signals_received() == []
    s.handle_timer(130.0)
    # Only a reconnect: no new login for silence alone (a quiet market is silent too).
    (signal,) = s.signals_received()
    assert isinstance(signal, ReconnectNeeded) and signal.reason.startswith("socket silent for 60 s")
    assert s.next_deadline() is None  # reported once per connection
    s.handle_timer(500.0)
    assert s.signals_received() == []
    # Any frame re-arms it.
    s.receive_text(fixture_lines("ws_md_al30.jsonl")[0], 501.0)
    assert s.next_deadline() == 561.0


def test_market_open_gets_wall_time_and_executions_only_never_idles() -> None:
    seen: list[float] = []

    def market_open(wall: float) -> bool:
        seen.append(wall)
        return True

    s = session(sub(Channel.TICKER, AL30), idle_timeout=30.0, confirm_after=100.0, market_open=market_open)
    s.handle_timer(30.0)
    assert seen == [WALL]
    assert isinstance(s.signals_received()[-1], ReconnectNeeded)
    quiet = session(sub(Channel.EXECUTIONS), idle_timeout=30.0)
    assert quiet.next_deadline() is None
    quiet.handle_timer(10_000.0)
    assert quiet.signals_received() == [Subscribed(sub(Channel.EXECUTIONS))]


def test_not_connected_has_no_deadline_and_queues_nothing() -> None:
    s = session(sub(Channel.TICKER, AL30), connect=False)
    assert s.next_deadline() is None and s.data_to_send() == []
    s.handle_timer(1e9)
    assert s.signals_received() == []


# ---------------------------------------------------------------- order entry frames


def test_order_entry_frames_use_json_numbers() -> None:
    s = session(sub(Channel.EXECUTIONS))
    s.data_to_send()
    s.send_order(
        symbol="DLR/DIC23",
        side="buy",
        quantity=10,
        account="REM1",
        price=Decimal("180.50"),
        ws_client_order_id="abc",
    )
    s.cancel_order("310059219481980", "PBCP")
    no, co = s.data_to_send()
    assert no == (
        '{"type":"no","product":{"marketId":"ROFX","symbol":"DLR/DIC23"},"price":180.50,"quantity":10,'
        '"side":"BUY","account":"REM1","ordType":"LIMIT","timeInForce":"DAY","iceberg":false,"wsClOrdId":"abc"}'
    )
    assert json.loads(co) == {"type": "co", "clientId": "310059219481980", "proprietary": "PBCP"}
    s.connection_lost(1.0)
    with pytest.raises(RuntimeError):
        s.cancel_order("x", "PBCP")


def answers(s: PrimaryWsSession) -> list[OrderAnswered]:
    return [signal for signal in s.signals_received() if isinstance(signal, OrderAnswered)]


def test_the_first_report_ties_the_ws_client_order_id_to_the_order() -> None:
    """`wsClOrdId` comes in the first report only: it names the order (its clOrdId) and the
    caller's id stays on every later update and fill."""
    s = session(sub(Channel.EXECUTIONS))
    assert s.orders_live
    s.send_order(
        symbol="DLR/DIC23", side="buy", quantity=10, account="12345", price=180, ws_client_order_id="w1"
    )
    assert json.loads(s.data_to_send()[-1])["wsClOrdId"] == "w1"
    s.receive_text(_or(orderId=None, status="PENDING_NEW", text="Enviada", wsClOrdId="w1"), 1.0)
    (answer,) = answers(s)
    assert (answer.request, answer.kind, answer.order_id, answer.status) == ("w1", "new", "A", "pending_new")
    s.receive_text(_or(orderId="9", execId="E1", status="NEW", cumQty=0, text="Aceptada "), 1.0)
    s.receive_text(_or(orderId="9", execId="E2", status="FILLED", cumQty=10, lastPx=180, lastQty=10), 1.0)
    events = s.events_received()
    assert answers(s) == []  # later reports answer nothing more
    assert {(e.order_id, e.client_order_id) for e in events} == {("A", "w1")}
    assert [e.qty for e in events if isinstance(e, Fill)] == [Decimal(10)]


def test_a_cancel_is_answered_by_its_request_and_a_refused_one_leaves_the_order_as_it_was() -> None:
    s = session(sub(Channel.EXECUTIONS))
    s.receive_text(_or(orderId="9", execId="E1", status="NEW", cumQty=0), 1.0)
    s.cancel_order("A", "PBCP", order_id="A")
    assert json.loads(s.data_to_send()[-1]) == {"type": "co", "clientId": "A", "proprietary": "PBCP"}
    s.receive_text(_or(clOrdId="C1", origClOrdId="A", execId="E2", status="CANCELLED", text="Cancelada"), 1.0)
    s.receive_text(_or(orderId="9", execId="E3", status="CANCELLED", text="Cancelada"), 1.0)
    (answer,) = answers(s)
    assert (answer.request, answer.kind, answer.status) == ("A", "cancel", "canceled")
    assert [e.status for e in s.events_received() if isinstance(e, OrderUpdate)] == [
        "new",
        "canceled",
        "canceled",
    ]
    # Once more: the venue refuses a cancel of an order no longer active; the order is not "rejected".
    s.cancel_order("A", "PBCP", order_id="A")
    s.receive_text(
        _or(clOrdId="C2", origClOrdId="A", execId="E4", status="REJECTED", text="Orden no activa"), 1.0
    )
    (answer,) = answers(s)
    assert (answer.kind, answer.status, answer.reason) == ("cancel", "rejected", "Orden no activa")
    assert s.events_received() == []


def test_an_error_frame_echoing_an_order_request_answers_it_and_fails_no_subscription() -> None:
    s = session(sub(Channel.EXECUTIONS), sub(Channel.TICKER, "X"))
    s.signals_received()
    no = '{"type":"no","product":{"marketId":"ROFX","symbol":"X"},"quantity":1,"wsClOrdId":"w2"}'
    s.receive_text(
        json.dumps({"status": "ERROR", "message": no, "description": "Product X:ROFX doesn't exist"}), 1.0
    )
    s.cancel_order("nope", "PBCP", order_id="nope")
    co = '{"type":"co", "clientId":"nope", "proprietary":"PBCP"}'
    s.receive_text(
        json.dumps({"status": "ERROR", "message": co, "description": "Order nope:PBCP doesn't exist"}), 1.0
    )
    signals = s.signals_received()
    assert not [x for x in signals if isinstance(x, SubscribeFailed | BadFrame)]
    new, cancel = [x for x in signals if isinstance(x, OrderAnswered)]
    assert (new.request, new.kind, type(new.error)) == ("w2", "new", UnknownSymbol)
    assert (cancel.request, cancel.kind, type(cancel.error)) == ("nope", "cancel", UnknownOrder)


def test_a_replace_keeps_the_order_id_its_fills_and_moves_the_live_request() -> None:
    """Primary's replace is a new request carrying the filled quantity over; the replaced one
    reports CANCELLED "Reemplazada". The order stays one order, open, filled once."""
    s = session(sub(Channel.EXECUTIONS))
    s.receive_text(
        _or(orderId="9", execId="E1", status="PARTIALLY_FILLED", cumQty=4, lastPx=180, lastQty=4), 1.0
    )
    s.receive_text(_or(orderId="9", execId="E2", status="CANCELLED", cumQty=4, text="Reemplazada"), 1.0)
    replacement = {"clOrdId": "R1", "origClOrdId": "A", "orderId": "9", "price": 181, "orderQty": 12}
    s.receive_text(_or(**replacement, execId="E3", status="NEW", cumQty=4), 1.0)
    events = s.events_received()
    updates = [e for e in events if isinstance(e, OrderUpdate)]
    assert [(u.order_id, u.status, u.limit_price, u.qty) for u in updates] == [
        ("A", "partially_filled", Decimal(180), Decimal(10)),
        ("A", "new", Decimal(181), Decimal(12)),
    ]
    assert [f.qty for f in events if isinstance(f, Fill)] == [Decimal(4)]
    assert s.orders.live_request("A") == "R1" and s.orders.terms("A") == (Decimal(12), Decimal(181))
    (answer,) = answers(s)
    assert (answer.request, answer.kind, answer.order_id, answer.status) == ("R1", "replace", "A", "new")
    s.receive_text(_or(**replacement, execId="E4", status="FILLED", cumQty=12, lastPx=181, lastQty=8), 1.0)
    assert [f.qty for f in s.events_received() if isinstance(f, Fill)] == [Decimal(8)]


# ---------------------------------------------------------------- fuzz


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
entry_values = st.one_of(
    json_values,
    st.lists(st.fixed_dictionaries({"price": json_values, "size": json_values}), max_size=3),
    st.fixed_dictionaries({"price": json_values, "size": json_values, "date": json_values}),
)
md_like = st.builds(
    lambda sym, entries, ts: json.dumps(
        {
            "type": "Md",
            "timestamp": ts,
            "instrumentId": {"marketId": "ROFX", "symbol": sym},
            "marketData": entries,
        }
    ),
    st.sampled_from([AL30, GGAL, "X"]),
    st.dictionaries(
        st.sampled_from(["BI", "OF", "LA", "OP", "CL", "SE", "HI", "LO", "TV", "OI", "TC"]), entry_values
    ),
    json_values,
)
or_like = st.builds(
    lambda report: json.dumps({"type": "or", "orderReport": report}),
    st.dictionaries(
        st.sampled_from(
            [
                "clOrdId",
                "orderId",
                "origClOrdId",
                "cumQty",
                "lastPx",
                "side",
                "status",
                "instrumentId",
                "transactTime",
                "execId",
                "avgPx",
            ]
        ),
        json_values,
    ),
)
error_like = st.builds(
    lambda d, m: json.dumps({"status": "ERROR", "description": d, "message": m}),
    st.one_of(st.text(max_size=40), st.just(f"Product {AL30}:ROFX don't exist")),
    st.one_of(st.none(), st.text(max_size=40), st.just('{"type":"os"}')),
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(st.text(max_size=80), json_values.map(json.dumps), md_like, or_like, error_like), max_size=6
    )
)
@pytest.mark.slow  # long: hypothesis examples or real-time waits; the whole suite runs it
def test_fuzz_receive_text_gives_events_or_bad_frames(texts: list[str]) -> None:
    s = session(
        sub(Channel.TICKER, AL30),
        sub(Channel.BOOK, AL30, depth=5),
        sub(Channel.TRADES, GGAL),
        sub(Channel.STATS, GGAL),
        sub(Channel.EXECUTIONS),
    )
    for i, text in enumerate(texts):
        s.receive_text(text, float(i))  # must never raise
    for event in s.events_received():
        assert event.venue == "primary"
    for signal in s.signals_received():
        assert isinstance(signal, BadFrame | Subscribed | SubscribeFailed | TokenRejected | ReconnectNeeded)
        if isinstance(signal, BadFrame):  # the venue's mistake, never our handling's (InternalError)
            assert not isinstance(signal.error, InternalError), (signal.error, texts)


# ---------------------------------------------------------------- the Md hot path
#
# Compact `{"type":"Md",…` text takes the session's hot path: the lazy decode (a book side whose
# text equals the product's previous one is not decoded again), or the whole-frame decode for a
# product whose sides both changed last time. The same frame as bytes takes the general route
# (`parse_ws_frame`, every number checked there): both must give the same events, signals and books.


def compact(symbol: str, ts: int | None = 1_733_169_290_243, **entries: Any) -> str:
    """An Md frame spelled as Primary sends it (no spaces): the hot path's input."""
    frame: dict[str, Any] = {"type": "Md", "timestamp": ts}
    if ts is None:
        del frame["timestamp"]
    frame["instrumentId"] = {"marketId": "ROFX", "symbol": symbol}
    frame["marketData"] = entries
    return json.dumps(frame, separators=(",", ":"))


def hot_session() -> PrimaryWsSession:
    subs = [sub(Channel.BOOK, AL30, depth=d) for d in (1, 3, 5)] + [sub(Channel.BOOK, GGAL, depth=2)]
    for symbol in (AL30, GGAL):
        subs += [sub(Channel.TICKER, symbol), sub(Channel.TRADES, symbol), sub(Channel.STATS, symbol)]
    return session(*subs)


_ODD_NUMBERS = ["0", "-5", "0E-50", "1E+41", "1e-41", "1.50", "7.0", '"NaN"', '"12.5"', "null", "1E+2"]


def _number(rng: random.Random, odd: float) -> str:
    if rng.random() < odd:
        return rng.choice(_ODD_NUMBERS)
    return str(rng.choice([rng.randint(1, 9999), round(rng.uniform(1, 90_000), 2)]))


def _side_text(rng: random.Random, odd: float) -> str:
    if rng.random() < 0.05:
        return rng.choice(["null", "[]", '"x"', "{}", "[null]", '[{"price":1}]'])
    rows = [
        '{"price":%s,"size":%s}' % (_number(rng, odd), _number(rng, odd))  # noqa: UP031
        for _ in range(rng.choice([1, 1, 2, 5, 5, 6]))
    ]
    return "[" + ",".join(rows) + "]"


def hot_frames(rng: random.Random, count: int, odd: float = 0.03) -> list[str]:
    """Md frames of two products: sides repeated, one side changed, both changed (several frames
    in a row: the whole-frame route), odd and insane numbers, null and absent sides, figures."""
    last: dict[str, dict[str, str]] = {}
    texts = []
    for _ in range(count):
        symbol = rng.choice([AL30, GGAL, AL30_CI])
        entries = dict(last.get(symbol, {}))
        change = rng.random()
        if not entries or change < 0.25:  # both sides new
            entries = {"BI": _side_text(rng, odd), "OF": _side_text(rng, odd)}
        elif change < 0.55:
            entries[rng.choice(["BI", "OF"])] = _side_text(rng, odd)
        if rng.random() < 0.7:
            entries["LA"] = '{"price":%s,"size":%d,"date":%d}' % (  # noqa: UP031
                _number(rng, odd),
                rng.randint(1, 500),
                1_733_169_288_000 + rng.randint(0, 3),
            )
        else:
            entries.pop("LA", None)
        if rng.random() < 0.05:
            entries["HI"] = _number(rng, odd)
        if rng.random() < 0.03:
            entries.pop(rng.choice(["BI", "OF"]), None)
        last[symbol] = entries
        body = ",".join(f'"{key}":{value}' for key, value in entries.items())
        stamp = rng.choice(['"timestamp":1733169290243,'] * 20 + ["", '"timestamp":1e20,'])
        texts.append(
            '{"type":"Md",%s"instrumentId":{"marketId":"ROFX","symbol":"%s"},"marketData":{%s}}'  # noqa: UP031
            % (stamp, symbol, body)
        )
    return texts


Observed = tuple[list[tuple[str, bytes]], list[tuple[str, str]], list[list[list[str]] | None]]


def _observed(texts: list[str] | list[bytes]) -> list[Observed]:
    """Everything a hot_session gives for `texts`, frame by frame, as comparable data (book
    levels as their digits: equal is not enough, the latest frame's spelling must be kept)."""
    s = hot_session()
    book_subs = [one for one in s.subscriptions if one.channel is Channel.BOOK]
    out: list[Observed] = []
    for i, text in enumerate(texts):
        s.receive_text(text, float(i))  # type: ignore[arg-type]
        events = [(type(e).__name__, msgspec.json.encode(e)) for e in s.events_received()]
        signals = [
            (type(signal).__name__, str(signal.error) if isinstance(signal, BadFrame) else repr(signal))
            for signal in s.signals_received()
        ]
        books: list[list[list[str]] | None] = []
        for one in book_subs:
            book = s.book(one)
            sides = None if book is None else (book.bids_levels(), book.asks_levels())
            books.append(None if sides is None else [[repr(level) for level in side] for side in sides])
        out.append((events, signals, books))
    return out


def test_hot_path_gives_what_the_general_route_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    import brokerbridge.venues.primary.market_data as market_data_module
    import brokerbridge.venues.primary.session as session_module

    routes: Counter[str] = Counter()

    def counted(module: object, name: str) -> Callable[..., object]:
        original = getattr(module, name)

        def call(*args: object) -> object:
            routes[name] += 1
            return original(*args)

        return call

    # The session picks the route; the Md module decodes changed sides and asks for verdicts.
    for name in ("parse_md_lazily", "parse_md_rows_unchecked", "parse_ws_frame"):
        monkeypatch.setattr(session_module, name, counted(session_module, name))
    for name in ("_side", "parse_ws_frame"):
        monkeypatch.setattr(market_data_module, name, counted(market_data_module, name))
    texts = hot_frames(random.Random(8), 4000)
    hot = _observed(texts)
    general = _observed([text.encode() for text in texts])  # bytes: never the hot path
    for index, (ours, reference) in enumerate(zip(hot, general, strict=True)):
        assert ours == reference, texts[index]
    refused = sum(1 for _, signals, _ in hot for signal in signals if signal[0] == "BadFrame")
    emitted = sum(len(events) for events, _, _ in hot)
    assert 200 < refused < 3000 and emitted > 3000  # both kinds of outcome, many times over
    # Every route ran: lazy with a side decoded, whole frames (churning products), the exact check.
    assert routes["parse_md_rows_unchecked"] > 300 and routes["_side"] > 1000
    assert routes["parse_md_lazily"] > 1000 and routes["parse_ws_frame"] > 4000 + 200


def test_a_side_sent_again_is_not_decoded_again() -> None:
    s = session(sub(Channel.BOOK, AL30, depth=5))
    bids = '[{"price":76820,"size":2569},{"price":76810,"size":3}]'
    s.receive_text(compact(AL30, BI=json.loads(bids), OF=[{"price": 76830, "size": 1}]), 1.0)
    s.receive_text(compact(AL30, BI=json.loads(bids), OF=[{"price": 76840, "size": 1}]), 2.0)
    first, second = s.events_received()
    assert isinstance(first, BookSnapshot) and isinstance(second, BookSnapshot)
    assert second.bids is first.bids  # the levels worked out for the first frame, not rebuilt
    assert second.asks == (Level(Decimal("76840"), Decimal("1")),)


def test_a_refused_frame_is_not_remembered_and_equal_is_not_the_same_text() -> None:
    s = session(sub(Channel.BOOK, AL30, depth=5), sub(Channel.TICKER, AL30))
    ok = '{"type":"Md","timestamp":1733169290243,"instrumentId":{"symbol":"%s"},"marketData":{%s}}'
    first = ok % (AL30, '"BI":[{"price":1,"size":0}],"OF":[{"price":2,"size":1}]')
    insane = ok % (AL30, '"BI":[{"price":1,"size":0}],"OF":[{"price":2,"size":1E+50}]')
    tiny_zero = ok % (AL30, '"BI":[{"price":1,"size":0E-50}],"OF":[{"price":2,"size":1}]')
    for text in (first, insane, insane, tiny_zero, first):
        s.receive_text(text, 1.0)
    signals = s.signals_received()
    refusals = [signal for signal in signals if isinstance(signal, BadFrame)]
    # The refused side is refused again (not taken from memory); 0E-50 equals 0 but is not sane.
    assert [str(r.error) for r in refusals] == [
        str(_refusal(insane)),
        str(_refusal(insane)),
        str(_refusal(tiny_zero)),
    ]
    assert "$.OF.0" in str(refusals[0].error) and "$.BI.0" in str(refusals[2].error)
    assert len(s.events_received()) == 2  # the first frame's ticker and book; the last is no change


def _refusal(text: str) -> ProtocolError:
    from brokerbridge.venues.primary.messages import parse_ws_frame

    with pytest.raises(ProtocolError) as caught:
        parse_ws_frame(text)
    return caught.value


def test_a_product_whose_book_churns_is_decoded_whole_then_lazily_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import brokerbridge.venues.primary.session as session_module

    whole: list[str] = []
    original = session_module.parse_md_rows_unchecked

    def spy(text: str) -> object:
        whole.append(text)
        return original(text)

    monkeypatch.setattr(session_module, "parse_md_rows_unchecked", spy)
    s = session(sub(Channel.BOOK, AL30, depth=1))
    frames = [
        compact(AL30, BI=[{"price": 10 + i, "size": 1}], OF=[{"price": 20 + i, "size": 1}]) for i in range(4)
    ]
    still = compact(AL30, BI=[{"price": 13, "size": 1}], OF=[{"price": 99, "size": 1}])  # bid stays
    for text in [*frames, still, still, still]:
        s.receive_text(text, 1.0)
    # Frames 0 and 1 are lazy (no previous text, then both sides changed); 2, 3 and `still` whole;
    # `still` kept the bid, so the product is lazy again.
    assert whole == [*frames[2:], still]
    # Whatever the route, the same books: every frame but the repeated `still` changed one.
    bids = [e.bids[0].price for e in s.events_received() if isinstance(e, BookSnapshot)]
    assert bids == [Decimal(p) for p in (10, 11, 12, 13, 13)]
