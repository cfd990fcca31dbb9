"""The cluster codec (io/cluster/codec.py): stream entries and interest texts round trip exactly,
for every event type; bad input is a `ProtocolError` naming the field; `topic_of` (core/topics.py)
routes an event and its subscription to the same stream."""

from __future__ import annotations

import typing

import pytest

from brokerbridge.core.errors import ProtocolError
from brokerbridge.core.events import AnyEvent, Channel, Subscription, encode_event
from brokerbridge.core.topics import topic_of
from brokerbridge.io.cluster.codec import (
    Entry,
    decode_entry,
    encode_entry,
    subscription_of,
    subscription_text,
)
from brokerbridge.services import fanout
from tests.cluster.samples import every_event


def test_the_samples_cover_every_event_type() -> None:
    assert {type(e) for e in every_event()} == set(typing.get_args(AnyEvent))


@pytest.mark.parametrize("event", every_event(), ids=lambda e: type(e).__name__)
def test_an_entry_round_trips_exactly(event: AnyEvent) -> None:
    fields = encode_entry(event, epoch=7, node="node-a")
    assert set(fields) == {b"e", b"ep", b"n"}
    entry = decode_entry(fields)
    assert entry == Entry(event, 7, "node-a")
    # the exact digits too (Decimal equality ignores trailing zeros; Kraken checksums do not)
    assert encode_event(entry.event) == encode_event(event)
    # redis-py with decode_responses=True hands back str keys and values
    as_text = {k.decode() if isinstance(k, bytes) else k: v.decode() for k, v in fields.items()}
    assert decode_entry(as_text) == entry


def test_a_missing_field_is_named() -> None:
    fields = encode_entry(every_event()[0], epoch=1, node="a")
    del fields[b"ep"]
    with pytest.raises(ProtocolError, match="no field 'ep'"):
        decode_entry(fields)


def test_bad_event_and_epoch_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError, match="field 'e' is not an event"):
        decode_entry({b"e": b'{"kind":"nope"}', b"ep": b"1", b"n": b"a"})
    with pytest.raises(ProtocolError, match="field 'ep' is not an epoch"):
        decode_entry({b"e": encode_event(every_event()[0]), b"ep": b"x", b"n": b"a"})


def test_subscription_text_is_canonical_and_round_trips() -> None:
    a = Subscription(venue="kraken", channel=Channel.BOOK, symbol="BTC/USD", depth=25)
    b = Subscription(depth=25, symbol="BTC/USD", channel=Channel.BOOK, venue="kraken")
    assert subscription_text(a) == subscription_text(b)
    assert subscription_of(subscription_text(a)) == a
    assert subscription_of(subscription_text(a).encode()) == a
    greeks = Subscription(
        venue="primary", channel=Channel.GREEKS, symbol="GGAL", expiry="2026-12-18", model="european"
    )
    assert subscription_of(subscription_text(greeks)) == greeks
    with pytest.raises(ProtocolError, match="not a subscription"):
        subscription_of('{"venue": "kraken"}')


def test_topic_of_an_event_is_its_subscription_topic() -> None:
    assert fanout.topic_of is topic_of  # the fan-out routes with the very same function
    sub = Subscription(venue="kraken", channel=Channel.BOOK, symbol="BTC/USD", depth=10)
    book = next(e for e in every_event() if type(e).__name__ == "BookSnapshot")
    assert topic_of(book) == topic_of(sub) == sub.describe()
