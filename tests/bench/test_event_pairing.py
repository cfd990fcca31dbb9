"""The cluster benchmark pairs the deliveries of one venue event by two servers (bench/cluster_nodes.py):
the key leaves out the envelope and the event's stamp, and nothing else."""

from __future__ import annotations

import pytest
from bench.cluster_nodes import _paired
from bench.fanout_clients import event_key, stamp_span

TRADE = (
    '{"type":"event","id":"kraken-trades","seq":%d,"event":{"kind":"trade","venue":"kraken",'
    '"ts":%s,"symbol":"BTC/USD","side":"sell","price":"%s","qty":"0.19","trade_id":"%s","source":"ws"}}'
)


def key(text: str) -> str:
    payload = text.encode()
    return event_key(payload, *stamp_span(payload, b'"ts":'))


def test_one_event_from_two_servers_has_one_key() -> None:
    """Another connection's `seq`, and the stamp Kraken gave each session's frame, do not count."""
    single = TRADE % (7, "1796695187.042062", "63480.7", "52706792")
    edge = TRADE % (912, "1796695187.042113", "63480.7", "52706792")
    assert key(single) == key(edge)


@pytest.mark.parametrize(
    "other",
    [
        TRADE % (7, "1796695187.042062", "63480.7", "52706793"),  # the next trade
        TRADE % (7, "1796695187.042062", "63480.8", "52706792"),  # another price
        TRADE.replace("BTC/USD", "ETH/USD") % (7, "1796695187.042062", "63480.7", "52706792"),
    ],
)
def test_different_events_have_different_keys(other: str) -> None:
    assert key(TRADE % (7, "1796695187.042062", "63480.7", "52706792")) != key(other)


def test_a_stamp_last_in_the_event_is_found() -> None:
    payload = b'{"type":"event","id":"t","seq":1,"event":{"kind":"status","ts":17.5}}'
    start, end = stamp_span(payload, b'"ts":')
    assert payload[start:end] == b"17.5"


def test_pairs_are_the_events_both_probes_received_once() -> None:
    single = [["a", 10.0, 10.002], ["b", 11.0, 11.001], ["c", 12.0, 12.001], ["c", 12.0, 12.003]]
    edge = [["a", 10.0, 10.005], ["b", 11.0, 11.004], ["c", 12.0, 12.004], ["d", 13.0, 13.0]]
    pairs = sorted((round(s * 1000, 6), round(e * 1000, 6)) for s, e in _paired(single, edge))
    assert pairs == [(1.0, 4.0), (2.0, 5.0)]  # ms; "c" came twice on one path, "d" on one path only
