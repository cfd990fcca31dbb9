"""Primary wire types: every captured fixture parses, digits survive, bad input is a ProtocolError only."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec import UNSET

from brokerbridge.core.errors import ProtocolError
from brokerbridge.venues.primary import messages as m


def fixture_dir() -> Path:
    env = os.environ.get("BROKERBRIDGE_FIXTURES")
    if env:
        return Path(env) / "primary"
    return Path(__file__).parents[1] / "fixtures" / "primary"


def frames(path: Path) -> list[str]:
    text = path.read_text()
    return text.splitlines() if path.suffix == ".jsonl" else [text]


def test_every_ws_fixture_parses() -> None:
    files = sorted(fixture_dir().glob("ws_*"))
    assert len(files) == 7
    kinds = []
    for path in files:
        for text in frames(path):
            kinds.append(type(m.parse_ws_frame(text)).__name__)
    assert kinds.count("MdFrame") == 11 and kinds.count("OrFrame") == 3 and kinds.count("ErrorFrame") == 1


def test_md_keeps_digits_and_tells_absent_from_null() -> None:
    frame = m.parse_ws_frame((fixture_dir() / "ws_md_alua_ci_empty_bids.json").read_text())
    assert isinstance(frame, m.MdFrame)
    data = frame.marketData
    assert data.BI == [] and data.levels("BI") == []
    assert str(data.levels("OF")[0].price) == "84990.0"
    assert data.last() == m.EntryValue(price=Decimal("23049.0"), size=Decimal(69), date=1710872944016)
    assert data.OP is UNSET and not data.has("OP", "CL") and data.has("BI")
    nulls = m.parse_ws_frame('{"type":"Md","instrumentId":{"symbol":"A"},"marketData":{"BI":null,"OP":null}}')
    assert isinstance(nulls, m.MdFrame) and nulls.marketData.has("BI", "OP") and nulls.marketData.BI is None
    assert nulls.instrumentId.marketId == "ROFX" and nulls.timestamp is None
    trailing = m.parse_ws_frame(
        '{"type":"Md","instrumentId":{"symbol":"A"},"marketData":{"OF":[{"price":6320.00,"size":5}]}}'
    )
    assert isinstance(trailing, m.MdFrame) and str(trailing.marketData.levels("OF")[0].price) == "6320.00"


def test_scalar_entries_accept_numbers_and_objects() -> None:
    frame = m.parse_ws_frame((fixture_dir() / "ws_md_ggal.json").read_text())
    assert isinstance(frame, m.MdFrame)
    data = frame.marketData
    assert m.scalar_of(data.OP) == Decimal(6880)
    assert (
        m.scalar_of(data.CL) == Decimal(6840) and isinstance(data.CL, m.EntryValue) and data.CL.size is None
    )
    assert m.scalar_of(data.SE) is None  # absent
    oi = m.EntryValue(price=None, size=Decimal(7), date=1.0)
    assert m.scalar_of(oi, prefer_size=True) == Decimal(7) and m.scalar_of(oi) == Decimal(7)


def test_order_reports_are_sparse_and_typed() -> None:
    new, filled = (m.parse_ws_frame(t) for t in frames(fixture_dir() / "ws_or_al30_new_filled.jsonl"))
    assert isinstance(new, m.OrFrame) and isinstance(filled, m.OrFrame)
    assert new.orderReport.iceberg is None and filled.orderReport.iceberg == "true"
    assert (
        filled.orderReport.numericOrderId == "00519351"
        and filled.orderReport.originatingUsername == "ISV_MATRIZ4"
    )
    assert filled.orderReport.accountId == m.AccountId(id="12345")
    pending = m.parse_ws_frame(
        '{"type":"or","timestamp":1537212212623,"orderReport":{"orderId":null,"clOrdId":"275772212000001",'
        '"status":"PENDING_NEW","text":"Enviada","wsClOrdId":"12345678fz"}}'
    )
    assert isinstance(pending, m.OrFrame) and pending.orderReport.orderId is None
    assert pending.orderReport.wsClOrdId == "12345678fz" and pending.orderReport.cumQty is None


def test_error_frame() -> None:
    frame = m.parse_ws_frame((fixture_dir() / "ws_error_unknown_product.json").read_text())
    assert isinstance(frame, m.ErrorFrame)
    assert frame.text == "Product InvalidInstrument:ROFX don't exist"
    assert json.loads(frame.message or "")["products"] == [
        {"symbol": "InvalidInstrument", "marketId": "ROFX"}
    ]
    assert m.parse_ws_frame('{"status":"ERROR","message":"Access Denied"}').text == "Access Denied"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "[]",
        "null",
        '{"status":"OK"}',
        '{"type":"zz"}',
        '{"type":"Md"}',
        '{"type":"Md","instrumentId":{"symbol":1}}',
        '{"type":"Md","instrumentId":{"symbol":"A"},"marketData":{"BI":[{"price":"NaN","size":1}]}}',
        '{"type":"Md","instrumentId":{"symbol":"A"},"marketData":{"LA":{"price":1e999999}}}',
        '{"type":"Md","instrumentId":{"symbol":"A"},"timestamp":1e300,"marketData":{}}',
        '{"type":"or","orderReport":{"cumQty":"Infinity"}}',
        '{"type":"or"}',
        '{"status":"ERROR","description":5}',
    ],
)
def test_bad_frames_are_protocol_errors(text: str) -> None:
    with pytest.raises(ProtocolError):
        m.parse_ws_frame(text)


def test_outgoing_frames() -> None:
    assert m.os_frame(None) == '{"type":"os","snapshotOnlyActive":true}'
    assert m.os_frame("REM1", snapshot_only_active=False) == (
        '{"type":"os","account":{"id":"REM1"},"snapshotOnlyActive":false}'
    )
    iceberg = json.loads(
        m.new_order_frame(
            symbol="MERV - XMEV - GGAL - 24hs",
            side="SELL",
            quantity=100,
            account="12345",
            price=Decimal(7150),
            time_in_force="gtd",
            expire_date="20250101",
            iceberg=True,
            display_quantity=10,
        )
    )
    assert iceberg["timeInForce"] == "GTD" and iceberg["displayQuantity"] == 10 and iceberg["iceberg"] is True
    market = json.loads(
        m.new_order_frame(symbol="X", side="buy", quantity=1, account="a", order_type="market")
    )
    assert "price" not in market and market["ordType"] == "MARKET"
    with pytest.raises(ValueError):
        m.new_order_frame(symbol="X", side="hold", quantity=1, account="a", price=Decimal(1))
    with pytest.raises(ValueError):
        m.new_order_frame(symbol="X", side="buy", quantity=1, account="a")  # LIMIT without price
    with pytest.raises(ValueError):
        m.new_order_frame(symbol="X", side="buy", quantity=1, account="a", price=Decimal(1), iceberg=True)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
frame_like = st.builds(
    lambda kind, extra: json.dumps({"type": kind, **extra}),
    st.sampled_from(["Md", "md", "or", "OR", "x"]),
    st.dictionaries(
        st.sampled_from(["instrumentId", "marketData", "orderReport", "timestamp", "status"]), json_values
    ),
)


@pytest.mark.slow  # long: hypothesis examples or real-time waits; the whole suite runs it
@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=50), json_values.map(json.dumps), frame_like))
def test_fuzz_parse_is_frame_or_protocol_error(text: str | bytes) -> None:
    try:
        frame = m.parse_ws_frame(text)
    except ProtocolError:
        return
    assert isinstance(frame, m.MdFrame | m.OrFrame | m.ErrorFrame)


# ---------------------------------------------------------------- the session's lazy route

LAZY = '{"type":"Md","timestamp":1733169290243,"instrumentId":{"symbol":"AL30"},"marketData":{%s}}'


def test_lazy_md_keeps_the_book_sides_as_their_text_and_checks_the_rest() -> None:
    text = LAZY % '"BI":[{"price":6320.00,"size":5}],"OF":null,"LA":{"price":1,"size":2,"date":3}'
    lazy = m.parse_md_lazily(text)
    assert lazy is not None and lazy.instrumentId.symbol == "AL30"
    assert bytes(lazy.marketData.BI) == b'[{"price":6320.00,"size":5}]'
    assert bytes(lazy.marketData.OF) == b"null"
    rows = m.parse_rows(lazy.marketData.BI)
    assert isinstance(rows, list) and str(rows[0].price) == "6320.00"  # the digits as sent
    assert m.parse_rows(lazy.marketData.OF) is None
    assert m.parse_rows(m.parse_md_lazily(LAZY % '"LA":null').marketData.BI) is UNSET  # type: ignore[union-attr]
    whole = m.parse_md_rows_unchecked(text)
    assert whole is not None and whole.marketData.levels("BI") == rows
    with pytest.raises(ValueError, match="not a list of rows"):
        m.parse_rows(m.parse_md_lazily(LAZY % '"BI":{"price":1}').marketData.BI)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "text",
    [
        (LAZY % '"BI":[]').encode(),  # bytes: the general route
        (LAZY % '"BI":[]').replace('{"type":"Md",', '{"type": "Md", '),  # not Primary's spelling
        (LAZY % '"BI":[]')[:-1] + ',"status":"ERROR"}',  # an error frame wins over its type
        (LAZY % '"BI":[]').replace('"symbol"', '"symb\\u006fl"'),  # an escape
        (LAZY % '"BI":[]').replace('"Md"', '"Md"', 1)[:-1] + ',"type":"or"}',  # the last type counts
        (LAZY % '"LA":{"price":1E+50}'),  # insane numbers outside the book: the general route words it
        (LAZY % '"LA":{"price":1,"date":1e20}'),
        (LAZY % '"HI":"NaN"'),
        (LAZY % '"BI":[]').replace("1733169290243", "1e20"),
        (LAZY % '"BI":[]')[:-5],  # truncated
    ],
)
def test_lazy_md_leaves_to_the_general_route(text: str | bytes) -> None:
    assert m.parse_md_lazily(text) is None and m.parse_md_rows_unchecked(text) is None


def test_the_general_route_still_decides_what_the_lazy_route_left() -> None:
    error = (LAZY % '"BI":[]')[:-1] + ',"status":"ERROR","description":"boom"}'
    assert isinstance(m.parse_ws_frame(error), m.ErrorFrame)
    with pytest.raises(ProtocolError, match=r"\$\.LA"):
        m.parse_ws_frame(LAZY % '"LA":{"price":1E+50}')


def test_md_symbol_is_read_without_decoding() -> None:
    assert m.md_symbol(LAZY % "") == "AL30"
    assert m.md_symbol((LAZY % "").encode()) is None
    assert m.md_symbol('{"type":"Md"}') is None
    assert m.md_symbol('{"symbol":"unterminated') is None
