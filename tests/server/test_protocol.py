"""`event` messages are built from parts (an event's JSON encoded once for every client, the
subscription's head, the seq): the result must be exactly what encoding the whole message gives."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import msgspec
import pytest

from brokerbridge.core.events import AnyEvent, BookSnapshot, Level, Source, StreamState, StreamStatus, Ticker
from brokerbridge.server.protocol import (
    Codec,
    EventMessage,
    RequestId,
    ServerMessage,
    event_text,
    remedy_for,
    request_id_of,
)

EVENTS: list[AnyEvent] = [
    Ticker(
        venue="kraken",
        ts=1.5,
        symbol="BTC/USD",
        bid=Decimal("60000.10"),
        bid_qty=Decimal("0.5"),
        ask=None,
        ask_qty=None,
        last=Decimal("1E+3"),
        source=Source.REST,
    ),
    BookSnapshot(
        venue="kraken",
        ts=2.0,
        symbol="ETH/USD",
        depth=10,
        bids=(Level(Decimal("3000.00"), Decimal("1.000")),),
        asks=(),
    ),
    StreamStatus(venue="primary", ts=3.0, stream='primary:md:"odd"\\name', state=StreamState.LIVE),
]
IDS: list[RequestId] = ["t", 7, 'quote"s\\and\u00e9', ""]


def test_spliced_event_messages_equal_whole_encoding() -> None:
    codec = Codec()
    for event in EVENTS:
        for sub_id in IDS:
            for seq in (1, 2, 10**12):
                spliced = event_text(codec.event_head(sub_id), seq, codec.event_body(event))
                whole = codec.encode(EventMessage(id=sub_id, seq=seq, event=event))
                assert spliced == whole
                decoded = msgspec.json.decode(spliced, type=ServerMessage)
                assert decoded == EventMessage(id=sub_id, seq=seq, event=event)


def test_an_event_is_encoded_once_for_all_clients_and_the_memo_stays_bounded() -> None:
    codec = Codec()
    first = codec.event_body(EVENTS[0])
    assert codec.event_body(EVENTS[0]) is first  # the same text object: not encoded again
    for i in range(2000):  # many events later the memo has let the old ones go
        codec.event_body(StreamStatus(venue="kraken", ts=float(i), stream="s", state=StreamState.LIVE))
    assert len(codec._bodies) <= 256
    again = codec.event_body(EVENTS[0])
    assert again == first and again is not first


FREEZE = '{"op":"subscribe","venue":"kraken","channel":"ticker","symbol":"' + "S" * 900_000 + '"}'


def test_an_oversized_symbol_is_refused_by_the_decoder_in_microseconds() -> None:
    # One such message froze the whole server: the symbol reached a venue, a WARNING and a log
    # highlighter. The decoder now refuses it, naming the field, before anything else reads it.
    codec = Codec()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        with pytest.raises(msgspec.ValidationError) as refused:
            codec.decode(FREEZE)
        best = min(best, time.perf_counter() - start)
    assert "$.symbol" in str(refused.value)
    assert best < 0.02, f"{best * 1e6:.0f} µs"  # about 700 µs: parsing 900 kB is the cost
    assert "128 characters" in remedy_for(refused.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("symbol", "BTC/USD\n2026-01-01 CRITICAL forged line"),
        ("symbol", "\x1b[31mred"),
        ("symbol", ""),
        ("symbols", ["BTC/USD", "x" * 200]),
        ("id", "i" * 129),
        ("id", "a\rb"),
        ("id", 2**60),
        ("venue", "k" * 33),
        ("channel", "ticker\u2028"),
        ("depth", 10**6),
        ("interval", 0),
    ],
)
def test_odd_fields_are_refused_at_decode_time_with_the_rule(field: str, value: object) -> None:
    request = {"op": "subscribe", "id": "x", "venue": "kraken", "channel": "ticker", "symbol": "BTC/USD"}
    if field == "symbols":
        del request["symbol"]
    request[field] = value
    with pytest.raises(msgspec.ValidationError) as refused:
        Codec().decode(json.dumps(request))
    assert f"$.{field}" in str(refused.value)
    assert remedy_for(refused.value).startswith(("a ", "an ", f"{field}:"))


def test_an_auth_key_beyond_the_bound_is_refused_and_an_odd_id_is_not_echoed() -> None:
    with pytest.raises(msgspec.ValidationError):
        Codec().decode(json.dumps({"op": "auth", "key": "k" * 257}))
    assert request_id_of(json.dumps({"op": "x", "id": "i" * 1000})) is None
    assert request_id_of(json.dumps({"op": "x", "id": "two\nlines"})) is None
    assert request_id_of(json.dumps({"op": "x", "id": "fine"})) == "fine"
    assert request_id_of(json.dumps({"op": "x", "id": 7})) == 7
