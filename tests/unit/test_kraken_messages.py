"""Wire types: every captured fixture parses, digits survive, bad input is a ProtocolError only."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brokerbridge.core.errors import ProtocolError
from brokerbridge.venues.kraken import messages as m
from brokerbridge.venues.kraken.rest import parse_result

REST_METHOD = {
    "addorder": "AddOrder", "assetpairs": "AssetPairs", "assets": "Assets", "balance": "Balance",
    "balanceex": "BalanceEx", "cancelorder": "CancelOrder", "depth": "Depth",
    "getwebsocketstoken": "GetWebSocketsToken", "ohlc": "OHLC", "openorders": "OpenOrders",
    "systemstatus": "SystemStatus", "ticker": "Ticker", "time": "Time", "trades": "Trades",
    "tradeshistory": "TradesHistory",
}  # fmt: skip


def frames(path: Path) -> list[str]:
    text = path.read_text()
    return text.splitlines() if path.suffix == ".jsonl" else [text]


def test_every_ws_fixture_parses(kraken_dir: Path) -> None:
    files = sorted(kraken_dir.glob("ws_*"))
    assert len(files) >= 26
    parsed = 0
    for path in files:
        for text in frames(path):
            frame = m.parse_ws_frame(text)
            assert not isinstance(frame, dict), path.name
            parsed += 1
    assert parsed > 1100  # the two long book sequences are in there


def test_every_rest_fixture_parses(kraken_dir: Path) -> None:
    files = sorted(kraken_dir.glob("http_*.json"))
    assert len(files) >= 24
    for path in files:
        method = REST_METHOD[path.stem.removeprefix("http_").split("_")[0]]
        result = parse_result(200, path.read_bytes(), method)
        assert result is not None, path.name


def test_book_keeps_digits(kraken_dir: Path) -> None:
    frame = m.parse_ws_frame((kraken_dir / "ws_book_snapshot_btcusd.json").read_text())
    assert isinstance(frame, m.BookFrame) and frame.type == "snapshot"
    book = frame.data[0]
    assert book.symbol == "BTC/USD" and book.checksum == 423379305
    assert str(book.asks[0].qty) == "0.00100000"
    assert str(book.bids[2].price) == "63499.0"
    assert book.timestamp == "2026-07-07T23:00:03.947173Z"


def test_status_connection_id_beyond_int64(kraken_dir: Path) -> None:
    frame = m.parse_ws_frame((kraken_dir / "ws_status.json").read_text())
    assert isinstance(frame, m.StatusFrame)
    assert frame.data[0].connection_id == 12393906104898154338
    assert frame.data[0].system == "online"
    maintenance = m.parse_ws_frame((kraken_dir / "ws_status_maintenance.json").read_text())
    assert isinstance(maintenance, m.StatusFrame) and maintenance.data[0].system == "maintenance"


def test_acks(kraken_dir: Path) -> None:
    acks = [m.parse_ws_frame(line) for line in frames(kraken_dir / "ws_subscribe_acks.jsonl")]
    assert all(isinstance(a, m.MethodAck) and a.ok for a in acks)
    book = acks[2]
    assert isinstance(book, m.MethodAck)
    assert (book.req_id, book.ack_channel, book.ack_symbol) == (11, "book", "BTC/USD")
    assert isinstance(book.result, m.AckResult) and book.result.depth == 10
    no_req_id = acks[6]
    assert isinstance(no_req_id, m.MethodAck) and no_req_id.req_id is None
    refused = m.parse_ws_frame(frames(kraken_dir / "ws_error_acks.jsonl")[6])
    assert isinstance(refused, m.MethodAck) and not refused.ok
    assert refused.ack_symbol == "XBT/USD" and refused.error_text == "Currency pair not supported XBT/USD"
    batch = m.parse_ws_frame(frames(kraken_dir / "ws_trading_acks.jsonl")[5])
    assert isinstance(batch, m.MethodAck) and isinstance(batch.result, list) and len(batch.result) == 2


def test_private_frames(kraken_dir: Path) -> None:
    snap = m.parse_ws_frame((kraken_dir / "ws_balances_snapshot.json").read_text())
    assert isinstance(snap, m.BalancesSnapshotFrame) and snap.sequence == 1
    assert str(snap.data[1].balance) == "774.6366982600"
    update = m.parse_ws_frame((kraken_dir / "ws_balances_update_usd.json").read_text())
    assert isinstance(update, m.BalancesUpdateFrame) and update.sequence == 4
    assert update.data[0].amount == Decimal("-19.9743") and update.data[0].fee == Decimal("0.0499")
    sparse = m.parse_ws_frame(frames(kraken_dir / "ws_executions_updates.jsonl")[1])
    assert isinstance(sparse, m.ExecutionsFrame)
    report = sparse.data[0]
    assert (report.exec_type, report.order_id, report.symbol) == ("new", "7J91XK-XMFEL-348VPM", None)


def test_cloudflare_text_frame(kraken_dir: Path) -> None:
    text = (kraken_dir / "ws_text_frame_cloudflare_restarting.txt").read_text()
    assert isinstance(m.parse_ws_frame(text), m.CloudflareRestarting)
    assert isinstance(m.parse_ws_frame(text + "\n"), m.CloudflareRestarting)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[1,2]",
        "null",
        "{}",
        '{"channel":"book"}',
        '{"channel":"book","type":"snapshot","data":[{"symbol":"X","bids":[{"price":"x","qty":1}]}]}',
        '{"channel":"book","type":"snapshot","data":[{"symbol":"X","bids":[{"price":"NaN","qty":1}]}]}',
        '{"channel":"book","type":"update","data":[{"symbol":"X","asks":[{"price":1e999999999,"qty":1}]}]}',
        '{"channel":"book","type":"weird","data":[]}',
        '{"channel":"level3","type":"snapshot","data":[]}',
        '{"channel":"ticker","type":"update","data":{"symbol":"BTC/USD"}}',
        '{"channel":"status","data":[{"no_system":1}]}',
        '{"channel":5}',
        '{"method":"subscribe","success":"yes"}',
        '{"channel":"book","type":"snapshot","data":[]',
    ],
)
def test_bad_frames_raise_protocol_error(text: str) -> None:
    with pytest.raises(ProtocolError) as info:
        m.parse_ws_frame(text)
    assert info.value.message.startswith("kraken ws:")


def test_bytes_input_works() -> None:
    assert isinstance(m.parse_ws_frame(b'{"channel":"heartbeat"}'), m.Heartbeat)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
channels = st.sampled_from(
    ["book", "ticker", "trade", "ohlc", "instrument", "balances", "executions", "status", "heartbeat", "x"]
)
frame_like = st.fixed_dictionaries(
    {"channel": channels, "type": st.sampled_from(["snapshot", "update", "x"]), "data": json_values},
    optional={"sequence": json_values, "method": st.sampled_from(["subscribe", "pong", "ping"])},
).map(json.dumps)


@pytest.mark.slow  # long: hypothesis examples or real-time waits; the whole suite runs it
@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=200), json_values.map(json.dumps), frame_like))
def test_fuzz_parse_is_frame_or_protocol_error(text: str) -> None:
    try:
        frame = m.parse_ws_frame(text)
    except ProtocolError:
        return
    assert isinstance(frame, m.WsFrame)  # type: ignore[arg-type]
