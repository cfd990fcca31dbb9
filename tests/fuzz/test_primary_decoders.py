"""Primary decoders on captured and mutated wire messages: an event or a documented error, always.

As for Kraken (test_kraken_decoders.py): the WS session answers a frame it cannot use with a
`BadFrame` carrying a `ProtocolError` or the mapped `VenueError`, never its last-resort "unusable
frame" path; the REST codec, the order tracker, the catalogue and the normalizers raise
`BrokerBridgeError`s. Events that come out hold only finite numbers and encode for clients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokerbridge.core.errors import BrokerBridgeError, InternalError, VenueError
from brokerbridge.core.events import Channel, Subscription, encode_event
from brokerbridge.core.signals import BadFrame
from brokerbridge.venues.primary import normalize as norm
from brokerbridge.venues.primary.catalog import Catalog, detail_from_row, instrument_event
from brokerbridge.venues.primary.rest import RESPONSE_TYPES, parse_response
from brokerbridge.venues.primary.session import PrimaryWsSession
from tests.fuzz.mutations import Captured, captured, finite_numbers, fuzz_settings, hostile_text, mutated

pytestmark = pytest.mark.timeout(300)

WS = captured("primary", "ws_")
# The instrument captures are the bare `instruments` arrays: put them back in their envelope.
REST = [
    Captured(m.name, f'{{"status":"OK","instruments":{m.text}}}' if m.text.startswith("[") else m.text)
    for m in captured("primary", "http_")
]
WALL = 1_733_169_290.0
SYMBOLS = (
    "MERV - XMEV - AL30 - 24hs",
    "MERV - XMEV - GGAL - 24hs",
    "MERV - XMEV - ALUA - CI",
    "DLR/DIC21",
    "InvalidInstrument",
)


def _session() -> PrimaryWsSession:
    session = PrimaryWsSession(wall_clock=lambda: WALL, account="REM12345")
    for symbol in SYMBOLS:
        for channel in (Channel.TICKER, Channel.TRADES, Channel.STATS):
            session.add(Subscription(venue="primary", channel=channel, symbol=symbol), 0.0)
        session.add(Subscription(venue="primary", channel=Channel.BOOK, symbol=symbol, depth=5), 0.0)
    session.add(Subscription(venue="primary", channel=Channel.EXECUTIONS), 0.0)
    session.connection_made(0.0)
    session.data_to_send()
    return session


def _check_events(events: list[Any], text: str) -> None:
    for event in events:
        assert finite_numbers(event), (event, text[:300])
        encode_event(event)


def _feed(session: PrimaryWsSession, texts: list[str]) -> None:
    now = 0.0
    for text in texts:
        now += 0.5
        session.receive_text(text, now)
        session.handle_timer(now)
        session.next_deadline()
        session.data_to_send()
        for signal in session.signals_received():
            if isinstance(signal, BadFrame):
                assert not isinstance(signal.error, InternalError), (signal.error, text[:300])
        _check_events(session.events_received(), text)


def test_every_captured_frame_is_understood() -> None:
    session = _session()
    for message in WS:
        session.receive_text(message.text, 1.0)
        bad = [s for s in session.signals_received() if isinstance(s, BadFrame)]
        assert not bad, (message.name, bad)
        _check_events(session.events_received(), message.text)


@fuzz_settings
@given(
    st.lists(
        st.sampled_from(WS).flatmap(lambda m: st.one_of(st.just(m.text), mutated(m))), min_size=1, max_size=6
    )
)
def test_ws_session_on_mutated_captures(texts: list[str]) -> None:
    _feed(_session(), texts)


@fuzz_settings
@given(st.lists(hostile_text, min_size=1, max_size=4))
def test_ws_session_on_arbitrary_text(texts: list[str]) -> None:
    _feed(_session(), texts)


# ---------------------------------------------------------------- REST codec + normalizers

ENDPOINTS = {
    "http_accounts": "rest/accounts",
    "http_instruments_all_subset": "rest/instruments/all",
    "http_instruments_details_subset": "rest/instruments/details",
    "http_marketdata_get": "rest/marketdata/get",
    "http_marketdata_get_empty_entries": "rest/marketdata/get",
    "http_order_all": "rest/order/all",
    "http_order_cancel_ack": "rest/order/cancelById",
    "http_order_new_ack": "rest/order/newSingleOrder",
    "http_order_status": "rest/order/id",
    "http_segments": "rest/segment/all",
    "http_trades_get_empty": "rest/data/getTrades",
}


def _endpoint_of(message_name: str) -> str:
    return ENDPOINTS[message_name.split(".")[0]]


def _reports(tracker: norm.OrderTracker, reports: list[Any]) -> list[Any]:
    return [event for report in reports for event in tracker.events(report, ts=WALL)]


def _normalize(endpoint: str, response: Any) -> list[Any]:
    """What the connector and the catalogue do with each response (io/primary/connector.py)."""
    tracker = norm.OrderTracker()
    normalizers: dict[str, Callable[[Any], list[Any]]] = {
        "rest/marketdata/get": lambda r: norm.events_from_market_data(
            SYMBOLS[0],
            r.marketData,
            ticker=True,
            book_depths=[1, 5],
            stats=True,
            trades=norm.TradeTracker(),
            ts=WALL,
        ),
        "rest/order/all": lambda r: _reports(tracker, r.orders),
        "rest/order/id": lambda r: _reports(tracker, [r.order]),
        "rest/instruments/details": lambda r: [
            instrument_event(d, ts=WALL) for d in Catalog.from_wire(r.instruments)
        ],
        "rest/instruments/all": lambda r: [
            instrument_event(detail_from_row(row), ts=WALL) for row in r.instruments
        ],
    }
    return normalizers.get(endpoint, lambda r: [])(response)


def _decode(status: int, body: str, endpoint: str) -> None:
    try:
        events = _normalize(endpoint, parse_response(endpoint, status, None, body))
    except BrokerBridgeError:
        return
    _check_events(events, body)


def test_every_captured_response_decodes() -> None:
    assert {_endpoint_of(m.name) for m in REST} <= set(RESPONSE_TYPES)
    for message in REST:
        endpoint = _endpoint_of(message.name)
        _check_events(_normalize(endpoint, parse_response(endpoint, 200, None, message.text)), message.text)


def test_an_error_body_is_the_mapped_venue_error() -> None:
    with pytest.raises(VenueError):
        parse_response("rest/order/all", 200, None, '{"status":"ERROR","description":"Access Denied"}')


@fuzz_settings
@given(st.sampled_from(REST).flatmap(lambda m: st.tuples(st.just(_endpoint_of(m.name)), mutated(m))))
def test_rest_codec_on_mutated_captures(case: tuple[str, str]) -> None:
    endpoint, body = case
    _decode(200, body, endpoint)


@fuzz_settings
@given(
    st.sampled_from([200, 200, 200, 204, 301, 400, 401, 403, 404, 408, 429, 500, 502, 503]),
    hostile_text,
    st.sampled_from(sorted(RESPONSE_TYPES)),
)
def test_rest_codec_on_arbitrary_bodies(status: int, body: str, endpoint: str) -> None:
    _decode(status, body, endpoint)
