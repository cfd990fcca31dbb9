"""`event` messages are built from parts (an event's JSON encoded once for every client, the
subscription's head, the seq): the result must be exactly what encoding the whole message gives."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from brokerbridge.core.events import AnyEvent, BookSnapshot, Level, Source, StreamState, StreamStatus, Ticker
from brokerbridge.server.protocol import Codec, EventMessage, RequestId, ServerMessage, event_text

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
