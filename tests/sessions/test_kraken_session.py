"""KrakenWsSession driven in memory: captured frames in, events/signals/frames out, explicit time."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brokerbridge.core.errors import InternalError, ProtocolError, SessionInvalid, UnknownSymbol
from brokerbridge.core.events import (
    BalanceSnapshot,
    BalanceUpdate,
    BookSnapshot,
    BookUpdate,
    Channel,
    Fill,
    Gap,
    OrderUpdate,
    StreamState,
    StreamStatus,
    Subscription,
    Ticker,
)
from brokerbridge.venues.kraken.messages import WsFrame
from brokerbridge.venues.kraken.session import (
    FRAME_HANDLERS,
    BadFrame,
    KrakenWsSession,
    ReconnectNeeded,
    Resyncing,
    Subscribed,
    SubscribeFailed,
    SystemStatus,
    TokenRejected,
)

WALL = 1_800_000_000.0
BTC_BOOK = Subscription(venue="kraken", channel=Channel.BOOK, symbol="BTC/USD", depth=10)
ETH_BOOK = Subscription(venue="kraken", channel=Channel.BOOK, symbol="ETH/USD", depth=10)
BTC_TICKER = Subscription(venue="kraken", channel=Channel.TICKER, symbol="BTC/USD")
EXECUTIONS = Subscription(venue="kraken", channel=Channel.EXECUTIONS)
BALANCES = Subscription(venue="kraken", channel=Channel.BALANCES)


def public(*subs: Subscription) -> KrakenWsSession:
    session = KrakenWsSession(private=False, wall_clock=lambda: WALL)
    for sub in subs:
        session.add(sub, 0.0)
    session.connection_made(0.0)
    return session


def private(*subs: Subscription, token: str | None = "tok") -> KrakenWsSession:
    session = KrakenWsSession(private=True, wall_clock=lambda: WALL)
    if token:
        session.set_token(token)
    for sub in subs:
        session.add(sub, 0.0)
    session.connection_made(0.0)
    return session


def sent(session: KrakenWsSession) -> list[dict[str, object]]:
    return [json.loads(frame) for frame in session.data_to_send()]


def signals(session: KrakenWsSession) -> list[object]:
    """Signals other than `Subscribed` (data without an ack also confirms a subscription)."""
    return [sig for sig in session.signals_received() if not isinstance(sig, Subscribed)]


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def reformat(text: str, price_dp: int, qty_dp: int) -> str:
    """Re-emit book numbers at the pair's precision (what Kraken's engine sends)."""
    text = re.sub(r'"price":([-0-9.eE+]+)', lambda mt: f'"price":{Decimal(mt[1]):.{price_dp}f}', text)
    return re.sub(r'"qty":([-0-9.eE+]+)', lambda mt: f'"qty":{Decimal(mt[1]):.{qty_dp}f}', text)


def ack(req_id: int, channel: str, symbol: str | None = None, **extra: object) -> str:
    result: dict[str, object] = {"channel": channel, **extra}
    if symbol:
        result["symbol"] = symbol
    return json.dumps({"method": "subscribe", "req_id": req_id, "result": result, "success": True})


# ---------------------------------------------------------------- subscribe / ack


def test_connection_replays_subscriptions_batched_with_req_ids() -> None:
    session = public(BTC_BOOK, ETH_BOOK, BTC_TICKER)
    frames = sent(session)
    assert frames == [
        {
            "method": "subscribe",
            "params": {"channel": "book", "symbol": ["BTC/USD", "ETH/USD"], "depth": 10, "snapshot": True},
            "req_id": 1,
        },
        {"method": "subscribe", "params": {"channel": "ticker", "symbol": ["BTC/USD"]}, "req_id": 2},
    ]
    # One ack per symbol, mapped back to its subscription.
    session.receive_text(ack(1, "book", "ETH/USD", depth=10, snapshot=True), 0.1)
    session.receive_text(ack(1, "book", "BTC/USD", depth=10, snapshot=True), 0.1)
    session.receive_text(ack(2, "ticker", "BTC/USD", event_trigger="trades"), 0.1)
    assert session.signals_received() == [Subscribed(ETH_BOOK), Subscribed(BTC_BOOK), Subscribed(BTC_TICKER)]
    # A reconnect replays from the original arguments again.
    session.connection_lost(1.0)
    assert session.next_deadline() is None
    session.connection_made(2.0)
    assert [f["params"] for f in sent(session)] == [f["params"] for f in frames]


def test_add_and_remove_while_connected_and_ack_without_req_id() -> None:
    session = public()
    assert sent(session) == []
    candles = Subscription(venue="kraken", channel=Channel.CANDLES, symbol="ETH/USD", interval=60)
    session.add(candles, 1.0)
    assert sent(session) == [
        {
            "method": "subscribe",
            "params": {"channel": "ohlc", "symbol": ["ETH/USD"], "interval": 60},
            "req_id": 1,
        }
    ]
    session.receive_text(
        '{"method":"subscribe","result":{"channel":"ohlc","interval":60,"snapshot":true,"symbol":"ETH/USD"},'
        '"success":true}',
        1.1,
    )
    assert session.signals_received() == [Subscribed(candles)]
    session.remove(candles, 2.0)
    assert sent(session) == [
        {
            "method": "unsubscribe",
            "params": {"channel": "ohlc", "symbol": ["ETH/USD"], "interval": 60},
            "req_id": 2,
        }
    ]
    assert session.subscriptions == ()


def test_subscribe_refused(kraken_dir: Path) -> None:
    xbt = Subscription(venue="kraken", channel=Channel.TICKER, symbol="XBT/USD")
    session = public(xbt)
    sent(session)
    refusal = json.loads(lines(kraken_dir / "ws_error_acks.jsonl")[6])
    refusal["req_id"] = 1
    session.receive_text(json.dumps(refusal), 0.1)
    (signal,) = session.signals_received()
    assert isinstance(signal, SubscribeFailed) and signal.sub == xbt
    assert isinstance(signal.error, UnknownSymbol) and not signal.error.retryable
    assert session.subscriptions == ()  # refused for good: not replayed on the next connection


def test_wrong_endpoint_and_bad_arguments_are_our_errors() -> None:

    with pytest.raises(ValueError):
        KrakenWsSession(private=False, wall_clock=lambda: WALL).add(EXECUTIONS, 0.0)
    with pytest.raises(ValueError):
        KrakenWsSession(private=True, wall_clock=lambda: WALL).add(BTC_TICKER, 0.0)
    with pytest.raises(ValueError):
        KrakenWsSession(private=False, wall_clock=lambda: WALL).add(
            Subscription(venue="kraken", channel=Channel.BOOK, symbol="X/Y", depth=7), 0
        )
    session = KrakenWsSession(private=False, wall_clock=lambda: WALL)
    session.add(BTC_TICKER, 0.0)
    # The same ticker stream with a depth it does not use: our caller's mistake (the Bridge leaves
    # depth at its default for anything but books). A second book depth is fine: see
    # test_kraken_book_depths.py.
    with pytest.raises(ValueError, match="takes no depth"):
        session.add(Subscription(venue="kraken", channel=Channel.TICKER, symbol="BTC/USD", depth=25), 0.0)


# ---------------------------------------------------------------- books


def test_captured_2026_sequence_verifies_every_checksum(kraken_dir: Path) -> None:
    session = public(BTC_BOOK)
    sent(session)
    session.receive_text((kraken_dir / "ws_book_snapshot_btcusd.json").read_text(), 1.0)
    for i, line in enumerate(lines(kraken_dir / "ws_book_updates_btcusd.jsonl")):
        session.receive_text(line, 1.0 + i * 0.01)
    events = session.events_received()
    # No ack was fed: the first data frame confirms the subscription; nothing else is signalled.
    assert session.signals_received() == [Subscribed(BTC_BOOK)]
    assert session.data_to_send() == []  # no resync
    assert len(events) == 562
    assert isinstance(events[0], BookSnapshot) and all(isinstance(e, BookUpdate) for e in events[1:])
    assert all(e.checksum is not None for e in events)  # type: ignore[union-attr]
    assert events[0].ts == 1783465203.947173
    last = json.loads(lines(kraken_dir / "ws_book_updates_btcusd.jsonl")[-1])["data"][0]
    assert events[-1].checksum == last["checksum"]  # type: ignore[union-attr]


def test_2023_sequence_verifies_at_pair_precision_and_fails_on_its_raw_text(kraken_dir: Path) -> None:
    snapshot = (kraken_dir / "ws_book_snapshot_btcusd_2023.json").read_text()
    updates = lines(kraken_dir / "ws_book_updates_btcusd_2023.jsonl")
    good = public(BTC_BOOK)
    sent(good)
    for text in [snapshot, *updates]:
        good.receive_text(reformat(text, 1, 8), 1.0)
    assert len(good.events_received()) == 510
    assert signals(good) == [] and good.data_to_send() == []

    raw = public(BTC_BOOK)
    sent(raw)
    raw.receive_text(snapshot, 1.0)  # Python re-serialised it: 0.001 instead of 0.00100000
    (signal,) = signals(raw)
    assert isinstance(signal, Resyncing) and signal.sub == BTC_BOOK
    assert "2785033588" in signal.reason
    assert [e.state for e in raw.events_received() if isinstance(e, StreamStatus)] == [StreamState.RESYNCING]
    assert [f["method"] for f in sent(raw)] == ["unsubscribe", "subscribe"]
    for text in updates[:5]:
        raw.receive_text(text, 1.1)  # ignored while resyncing
    assert raw.events_received() == [] and raw.data_to_send() == []


def test_corrupted_checksum_resyncs_that_symbol_only(kraken_dir: Path) -> None:
    session = public(BTC_BOOK, ETH_BOOK)
    sent(session)
    btc_snapshot = (kraken_dir / "ws_book_snapshot_btcusd.json").read_text()
    eth_snapshot = btc_snapshot.replace("BTC/USD", "ETH/USD")
    session.receive_text(btc_snapshot, 1.0)
    session.receive_text(eth_snapshot, 1.0)
    updates = lines(kraken_dir / "ws_book_updates_btcusd.jsonl")
    session.receive_text(updates[0], 1.1)
    session.events_received()
    corrupted = json.loads(updates[1])
    corrupted["data"][0]["checksum"] += 1
    session.receive_text(json.dumps(corrupted).replace(" ", ""), 1.2)  # JSON numbers keep their digits

    (signal,) = signals(session)
    assert isinstance(signal, Resyncing) and signal.sub == BTC_BOOK
    frames = sent(session)
    assert [(f["method"], f["params"]) for f in frames] == [
        ("unsubscribe", {"channel": "book", "symbol": ["BTC/USD"], "depth": 10}),
        ("subscribe", {"channel": "book", "symbol": ["BTC/USD"], "depth": 10, "snapshot": True}),
    ]
    (status,) = session.events_received()
    assert isinstance(status, StreamStatus) and status.state is StreamState.RESYNCING
    assert status.stream == BTC_BOOK.describe()

    # ETH keeps flowing; BTC updates are ignored until the fresh snapshot verifies.
    session.receive_text(updates[0].replace("BTC/USD", "ETH/USD"), 1.3)
    session.receive_text(updates[2], 1.3)
    events = session.events_received()
    assert [(type(e).__name__, e.symbol) for e in events] == [("BookUpdate", "ETH/USD")]  # type: ignore[union-attr]
    reack = frames[1]["req_id"]
    session.receive_text(ack(reack, "book", "BTC/USD", depth=10), 1.4)  # type: ignore[arg-type]
    assert signals(session) == []  # resync resubscriptions do not re-announce Subscribed
    session.receive_text(btc_snapshot, 1.5)
    events = session.events_received()
    assert isinstance(events[0], BookSnapshot) and events[0].symbol == "BTC/USD"
    assert isinstance(events[1], StreamStatus) and events[1].state is StreamState.LIVE
    session.receive_text(updates[0], 1.6)
    assert isinstance(session.events_received()[0], BookUpdate)


def test_updates_without_their_snapshot_resync_the_book(kraken_dir: Path) -> None:
    # The snapshot was lost (a stalled link drops frames): no update can ever apply without it.
    session = public(BTC_BOOK)
    sent(session)
    update = lines(kraken_dir / "ws_book_updates_btcusd.jsonl")[0]
    session.receive_text(update, 1.0)
    (signal,) = signals(session)  # a resync, not a BadFrame (our handling failing would be one)
    assert isinstance(signal, Resyncing) and signal.sub == BTC_BOOK and "no snapshot" in signal.reason
    assert [e.state for e in session.events_received() if isinstance(e, StreamStatus)] == [
        StreamState.RESYNCING
    ]
    assert [f["method"] for f in sent(session)] == ["unsubscribe", "subscribe"]
    session.receive_text(update, 1.1)  # resyncing: ignored, not asked for again
    assert signals(session) == [] and session.events_received() == [] and sent(session) == []
    session.receive_text((kraken_dir / "ws_book_snapshot_btcusd.json").read_text(), 1.2)
    events = session.events_received()
    assert isinstance(events[0], BookSnapshot)
    assert isinstance(events[-1], StreamStatus) and events[-1].state is StreamState.LIVE


def test_book_that_never_verifies_pauses_stale_then_tries_again(kraken_dir: Path) -> None:
    session = public(BTC_BOOK)
    sent(session)
    bad = (kraken_dir / "ws_book_snapshot_btcusd_2023.json").read_text()
    for _ in range(10):
        session.receive_text(bad, 1.0)
    signals = session.signals_received()
    assert sum(isinstance(s, Resyncing) for s in signals) == 3
    states = [e.state for e in session.events_received() if isinstance(e, StreamStatus)]
    assert states[-1] is StreamState.STALE
    frames = sent(session)
    # Three unsubscribe+subscribe pairs, then a last unsubscribe and silence: no loop.
    assert [f["method"] for f in frames] == ["unsubscribe", "subscribe"] * 3 + ["unsubscribe"]
    assert session.book(BTC_BOOK) is None
    # After the pause (30 s), the book is asked for again.
    session.receive_text('{"channel":"heartbeat"}', 25.0)  # the link itself is fine
    session.handle_timer(30.9)
    assert [f["method"] for f in sent(session)] == ["ping"]  # only the keep-alive so far
    session.handle_timer(31.0)
    assert [f["method"] for f in sent(session)] == ["subscribe"]
    states = [e.state for e in session.events_received() if isinstance(e, StreamStatus)]
    assert states == [StreamState.RESYNCING]
    good = (kraken_dir / "ws_book_snapshot_btcusd.json").read_text()
    session.receive_text(good, 32.0)
    assert [e.state for e in session.events_received() if isinstance(e, StreamStatus)] == [StreamState.LIVE]


# ---------------------------------------------------------------- private channels


def test_private_subscribe_frames_and_sequences(kraken_dir: Path) -> None:
    session = private(EXECUTIONS, BALANCES)
    assert [f["params"] for f in sent(session)] == [
        {"channel": "executions", "token": "tok", "snap_orders": True, "snap_trades": True},
        {"channel": "balances", "token": "tok", "snapshot": True},
    ]
    session.receive_text((kraken_dir / "ws_balances_snapshot.json").read_text(), 1.0)
    session.receive_text((kraken_dir / "ws_executions_snapshot_trades.json").read_text(), 1.0)
    events = session.events_received()
    assert isinstance(events[0], BalanceSnapshot) and len(events[0].balances) == 5
    fills = events[1:]
    assert len(fills) == 4 and all(isinstance(f, Fill) and f.snapshot for f in fills)
    update = json.loads((kraken_dir / "ws_balances_update_usd.json").read_text())
    update["sequence"] = 2
    session.receive_text(json.dumps(update), 1.1)
    (balance,) = session.events_received()
    assert isinstance(balance, BalanceUpdate) and balance.total == Decimal("118.0677")
    assert signals(session) == []


def test_sequence_gap_resubscribes_with_snapshot_and_reports_gap(kraken_dir: Path) -> None:
    clock = iter([WALL, WALL + 5.0, WALL + 6.0, WALL + 7.0, WALL + 8.0])
    session = KrakenWsSession(private=True, wall_clock=lambda: next(clock))
    session.set_token("tok")
    session.add(EXECUTIONS, 0.0)
    session.connection_made(0.0)
    sent(session)
    session.receive_text((kraken_dir / "ws_executions_snapshot_trades.json").read_text(), 1.0)  # seq 1
    session.events_received()
    new_order = json.loads(lines(kraken_dir / "ws_executions_updates.jsonl")[1])
    new_order["sequence"] = 5  # 2..4 were lost
    session.receive_text(json.dumps(new_order), 2.0)

    events = session.events_received()
    gap = next(e for e in events if isinstance(e, Gap))
    assert gap.stream == EXECUTIONS.describe() and (gap.start, gap.end) == (WALL, WALL + 5.0)
    assert "1 to 5" in gap.reason
    assert not any(isinstance(e, OrderUpdate) for e in events)
    (signal,) = signals(session)
    assert isinstance(signal, Resyncing) and signal.sub == EXECUTIONS
    assert [(f["method"], f["params"]) for f in sent(session)] == [
        ("unsubscribe", {"channel": "executions", "token": "tok"}),
        ("subscribe", {"channel": "executions", "token": "tok", "snap_orders": True, "snap_trades": True}),
    ]
    new_order["sequence"] = 6
    session.receive_text(json.dumps(new_order), 2.1)  # still waiting for the snapshot
    assert session.events_received() == []
    session.receive_text((kraken_dir / "ws_executions_snapshot_trades.json").read_text(), 3.0)
    events = session.events_received()
    assert isinstance(events[-1], StreamStatus) and events[-1].state is StreamState.LIVE
    new_order["sequence"] = 2
    session.receive_text(json.dumps(new_order), 3.1)
    (order,) = session.events_received()
    assert isinstance(order, OrderUpdate) and order.status == "new" and not order.snapshot


def test_token_rejection_then_resubscribe() -> None:
    session = private(BALANCES, token="old")
    sent(session)
    rejection = {
        "channel": "balances", "error": "ESession:Invalid session", "method": "subscribe",
        "req_id": 1, "status": "error", "success": False,
    }  # fmt: skip
    session.receive_text(json.dumps(rejection), 0.5)
    session.receive_text(json.dumps(rejection), 0.6)  # reported once per token
    (signal,) = session.signals_received()
    assert isinstance(signal, TokenRejected) and isinstance(signal.error, SessionInvalid)
    session.set_token("fresh")
    session.resubscribe_private(1.0)
    assert sent(session) == [
        {
            "method": "subscribe",
            "params": {"channel": "balances", "token": "fresh", "snapshot": True},
            "req_id": 2,
        }
    ]


def test_a_passing_refusal_is_asked_again_with_a_growing_pause_on_the_same_connection() -> None:
    session = public(BTC_TICKER)
    sent(session)

    def refuse(req_id: int, now: float) -> None:
        refusal = {
            "error": "EService:Busy", "method": "subscribe", "req_id": req_id,
            "result": {"channel": "ticker", "symbol": "BTC/USD"}, "success": False,
        }  # fmt: skip
        session.receive_text(json.dumps(refusal), now)

    refuse(1, 0.5)
    (failed,) = session.signals_received()
    assert isinstance(failed, SubscribeFailed) and failed.error.retryable
    assert session.subscriptions == (BTC_TICKER,)  # kept: the reason passes
    assert session.next_deadline() == pytest.approx(1.5)  # 1 s after the refusal
    session.handle_timer(1.4)
    assert sent(session) == []
    session.handle_timer(1.5)
    (again,) = sent(session)
    assert again["method"] == "subscribe" and again["params"] == {"channel": "ticker", "symbol": ["BTC/USD"]}
    assert session.next_deadline() != pytest.approx(1.5)  # no busy loop while the answer is due
    refuse(again["req_id"], 2.0)  # type: ignore[arg-type]
    session.signals_received()
    assert session.next_deadline() == pytest.approx(4.0)  # then 2 s, doubling up to 30 s
    session.handle_timer(4.0)
    (third,) = sent(session)
    session.receive_text(ack(third["req_id"], "ticker", "BTC/USD"), 4.1)  # type: ignore[arg-type]
    assert session.signals_received() == [Subscribed(BTC_TICKER)]
    refuse(99, 5.0)  # an unmatched refusal changes nothing
    session.handle_timer(60.0)
    assert [f["method"] for f in sent(session)] == ["ping"]


def test_missing_token_asks_the_driver_for_one() -> None:
    session = private(EXECUTIONS, token=None)
    assert sent(session) == []
    (signal,) = session.signals_received()
    assert isinstance(signal, TokenRejected)


# ---------------------------------------------------------------- liveness and admin frames


def test_idle_watchdog_and_pings_with_explicit_time() -> None:
    session = KrakenWsSession(
        private=False, idle_timeout=10.0, ping_interval=20.0, ack_timeout=1000.0, wall_clock=lambda: WALL
    )
    assert session.next_deadline() is None
    session.add(BTC_TICKER, 100.0)
    session.connection_made(100.0)
    sent(session)
    assert session.next_deadline() == 110.0
    session.receive_text('{"channel":"heartbeat"}', 105.0)
    assert session.next_deadline() == 115.0
    session.handle_timer(114.9)
    assert session.signals_received() == []
    session.handle_timer(115.0)
    assert session.signals_received() == [ReconnectNeeded("no frame from Kraken for 10.0 s")]
    session.handle_timer(116.0)
    assert session.signals_received() == []  # once per connection
    assert session.next_deadline() == 120.0
    session.handle_timer(120.0)
    assert sent(session) == [{"method": "ping", "req_id": 2}]
    assert session.next_deadline() == 140.0
    session.receive_text('{"method":"pong","req_id":2,"time_in":"x","time_out":"y"}', 121.0)
    assert session.next_deadline() == 131.0  # a pong refreshes the watchdog


def test_admin_frames(kraken_dir: Path) -> None:
    session = public(BTC_TICKER)
    sent(session)
    session.receive_text((kraken_dir / "ws_status_maintenance.json").read_text(), 1.0)
    session.receive_text((kraken_dir / "ws_text_frame_cloudflare_restarting.txt").read_text(), 1.0)
    session.receive_text("garbage", 1.0)
    session.receive_text((kraken_dir / "ws_ticker_update_btcusd.json").read_text(), 1.0)
    signals = session.signals_received()
    assert signals[0] == SystemStatus("maintenance")
    assert signals[1] == ReconnectNeeded("CloudFlare WebSocket proxy restarting")
    assert isinstance(signals[2], BadFrame) and isinstance(signals[2].error, ProtocolError)
    (ticker,) = session.events_received()
    assert isinstance(ticker, Ticker) and ticker.ts == WALL and ticker.bid == Decimal("65843.7")


def test_every_frame_type_the_decoder_gives_has_a_handler() -> None:
    # receive_text hands a frame to its job by its exact type; a type missing from the table would
    # turn every frame of it into an InternalError.
    assert set(FRAME_HANDLERS) == set(get_args(WsFrame))


def test_frames_for_unsubscribed_streams_are_dropped(kraken_dir: Path) -> None:
    session = public(BTC_BOOK)
    sent(session)
    session.receive_text((kraken_dir / "ws_ticker_update_btcusd.json").read_text(), 1.0)
    session.receive_text((kraken_dir / "ws_trade_update_btcusd.json").read_text(), 1.0)
    assert session.events_received() == [] and session.signals_received() == []


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.text(max_size=120)
        | st.sampled_from(
            [
                '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":1.0,"qty":1}],'
                '"asks":[],"checksum":1}]}',
                '{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[],"asks":[],"checksum":0}]}',
                '{"channel":"executions","type":"update","data":[{"exec_type":"trade"}],"sequence":3}',
                '{"channel":"balances","type":"update","data":[],"sequence":"x"}',
                '{"method":"subscribe","req_id":1,"success":false,"error":"ESession:Invalid session"}',
                '{"method":"subscribe","req_id":1,"success":true,"result":[]}',
                '{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD"}]}',
            ]
        ),
        max_size=8,
    )
)
@pytest.mark.slow  # long: hypothesis examples or real-time waits; the whole suite runs it
def test_fuzz_receive_text_never_raises(texts: list[str]) -> None:
    for private_endpoint, subs in ((False, (BTC_BOOK, BTC_TICKER)), (True, (EXECUTIONS, BALANCES))):
        session = KrakenWsSession(private=private_endpoint, wall_clock=lambda: WALL)
        session.set_token("tok")
        for sub in subs:
            session.add(sub, 0.0)
        session.connection_made(0.0)
        for text in texts:
            session.receive_text(text, 1.0)
        for signal in session.signals_received():
            if isinstance(signal, BadFrame):
                # The venue's mistake only. The session catches a failure of its own handling too
                # (one frame must not take the connection down) and reports it as InternalError:
                # that is our bug, and must fail here rather than pass as a bad frame.
                assert not isinstance(signal.error, InternalError), (signal.error, texts)
                assert isinstance(signal.error, ProtocolError), (signal.error, texts)
        session.events_received()
        session.data_to_send()


def test_data_without_an_ack_confirms_the_subscription_once() -> None:
    session = public(BTC_TICKER)
    sent(session)
    frame = (
        '{"channel":"ticker","type":"snapshot","data":[{"symbol":"BTC/USD","bid":1.0,"bid_qty":1.0,'
        '"ask":2.0,"ask_qty":1.0,"last":1.5,"volume":1.0,"vwap":1.0,"low":1.0,"high":2.0,"change":0.0,'
        '"change_pct":0.0}]}'
    )
    session.receive_text(frame, 1.0)
    session.receive_text(frame, 2.0)
    assert session.signals_received() == [Subscribed(BTC_TICKER)]
    # The late ack changes nothing.
    session.receive_text(ack(1, "ticker", "BTC/USD"), 3.0)
    assert session.signals_received() == []


def test_an_unanswered_subscribe_asks_for_a_reconnect() -> None:
    session = KrakenWsSession(private=False, idle_timeout=100.0, ack_timeout=10.0, wall_clock=lambda: WALL)
    session.add(BTC_TICKER, 0.0)
    session.connection_made(0.0)
    sent(session)
    assert session.next_deadline() == 10.0
    session.receive_text('{"channel":"heartbeat"}', 5.0)  # the link is alive, the subscribe unanswered
    session.handle_timer(9.9)
    assert session.signals_received() == []
    session.handle_timer(10.0)
    assert session.signals_received() == [ReconnectNeeded("no answer to a subscribe within 10 s")]
