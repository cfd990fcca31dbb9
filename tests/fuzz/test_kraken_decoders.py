"""Kraken decoders on captured and mutated wire messages: an event or a documented error, always.

"Documented error": the WS session turns a frame it cannot use into a `BadFrame` signal carrying
the parser's `ProtocolError` (never the session's last-resort `InternalError`, which means our bug);
the REST codec and the normalizers raise a `BrokerBridgeError`. Events that do come out hold only
finite numbers and encode for clients.
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
from brokerbridge.venues.kraken import normalize as norm
from brokerbridge.venues.kraken.rest import RESULT_TYPES, parse_result
from brokerbridge.venues.kraken.session import KrakenWsSession
from tests.fuzz.mutations import captured, finite_numbers, fuzz_settings, hostile_text, mutated

pytestmark = pytest.mark.timeout(300)

WS = captured("kraken", "ws_")
REST = captured("kraken", "http_")
WALL = 1_700_000_000.0


def _sub(channel: Channel, symbol: str | None = None, **kw: Any) -> Subscription:
    return Subscription(venue="kraken", channel=channel, symbol=symbol, **kw)


# Every stream the captures carry, so mutated frames reach the normalizers and the book.
PUBLIC = (
    _sub(Channel.BOOK, "BTC/USD", depth=10),
    _sub(Channel.TICKER, "BTC/USD"),
    _sub(Channel.TRADES, "BTC/USD"),
    _sub(Channel.CANDLES, "BTC/USD", interval=1),
    _sub(Channel.CANDLES, "ETH/USD", interval=1),
    _sub(Channel.INSTRUMENTS),
)
PRIVATE = (_sub(Channel.BALANCES), _sub(Channel.EXECUTIONS))


def _sessions() -> list[KrakenWsSession]:
    public = KrakenWsSession(private=False, wall_clock=lambda: WALL)
    private = KrakenWsSession(private=True, wall_clock=lambda: WALL)
    private.set_token("fuzz-token")
    for session, subs in ((public, PUBLIC), (private, PRIVATE)):
        for sub in subs:
            session.add(sub, 0.0)
        session.connection_made(0.0)
        session.data_to_send()
    return [public, private]


def _feed(sessions: list[KrakenWsSession], texts: list[str]) -> None:
    now = 0.0
    for text in texts:
        now += 0.5
        for session in sessions:
            session.receive_text(text, now)
            session.handle_timer(now)
            assert session.next_deadline() is not None
            session.data_to_send()
            for signal in session.signals_received():
                if isinstance(signal, BadFrame):
                    assert not isinstance(signal.error, InternalError), (signal.error, text[:300])
            for event in session.events_received():
                assert finite_numbers(event), (event, text[:300])
                encode_event(event)


frames = st.lists(
    st.sampled_from(WS).flatmap(lambda m: st.one_of(st.just(m.text), mutated(m))), min_size=1, max_size=6
)


def test_every_captured_frame_is_understood() -> None:
    """The baseline the mutations start from: no capture is itself refused."""
    sessions = _sessions()
    for message in WS:
        for session in sessions:
            session.receive_text(message.text, 1.0)
            bad = [s for s in session.signals_received() if isinstance(s, BadFrame)]
            assert not bad, (message.name, bad)
            session.events_received()


@fuzz_settings
@given(frames)
def test_ws_session_on_mutated_captures(texts: list[str]) -> None:
    _feed(_sessions(), texts)


@fuzz_settings
@given(st.lists(hostile_text, min_size=1, max_size=4))
def test_ws_session_on_arbitrary_text(texts: list[str]) -> None:
    _feed(_sessions(), texts)


# ---------------------------------------------------------------- REST codec + normalizers

_METHODS = {name.lower(): name for name in RESULT_TYPES}
SYMBOLS = norm.SymbolMap()


def _method_of(message_name: str) -> str:
    """`http_depth_xbtusd_2026.json` → `Depth`; the error captures answer any method."""
    stem = message_name.removeprefix("http_").split(".")[0].split("_")[0]
    return _METHODS.get(stem, "Ticker")


def _normalize(method: str, result: Any) -> list[Any]:
    """What the connector does with each result (io/kraken/connector.py)."""
    normalizers: dict[str, Callable[[Any], list[Any]]] = {
        "Ticker": lambda r: [
            norm.ticker_from_rest(p, i, symbols=SYMBOLS, received=WALL) for p, i in r.items()
        ],
        "Depth": lambda r: [
            norm.book_from_rest(p, b, depth=10, symbols=SYMBOLS, received=WALL) for p, b in r.items()
        ],
        "OHLC": lambda r: norm.candles_from_rest(r, interval=1, symbols=SYMBOLS),
        "Trades": lambda r: norm.trades_from_rest(r, symbols=SYMBOLS),
        "BalanceEx": lambda r: [norm.balances_from_rest(r, received=WALL)],
        "OpenOrders": lambda r: norm.orders_from_rest(r.open, symbols=SYMBOLS),
        "ClosedOrders": lambda r: norm.orders_from_rest(r.closed, symbols=SYMBOLS),
        "TradesHistory": lambda r: norm.fills_from_rest(r.trades, symbols=SYMBOLS),
        "AssetPairs": _learn_symbols,
    }
    return normalizers.get(method, lambda r: [])(result)


def _learn_symbols(pairs: Any) -> list[Any]:
    norm.SymbolMap(pairs)
    return []


def _decode(status: int, body: str, method: str) -> None:
    try:
        events = _normalize(method, parse_result(status, body, method))
    except BrokerBridgeError:
        return
    for event in events:
        assert finite_numbers(event), (event, body[:300])
        encode_event(event)


def test_every_captured_response_decodes_and_every_captured_error_is_a_venue_error() -> None:
    for message in REST:
        method = _method_of(message.name)
        if message.name.startswith("http_errors"):
            with pytest.raises(VenueError):
                parse_result(200, message.text, method)
        else:
            for event in _normalize(method, parse_result(200, message.text, method)):
                assert finite_numbers(event), (message.name, event)


@fuzz_settings
@given(st.sampled_from(REST).flatmap(lambda m: st.tuples(st.just(_method_of(m.name)), mutated(m))))
def test_rest_codec_on_mutated_captures(case: tuple[str, str]) -> None:
    method, body = case
    _decode(200, body, method)


@fuzz_settings
@given(
    st.sampled_from([200, 200, 200, 204, 301, 400, 401, 403, 404, 408, 429, 500, 502, 503, 520]),
    hostile_text,
    st.sampled_from(sorted(RESULT_TYPES)),
)
def test_rest_codec_on_arbitrary_bodies(status: int, body: str, method: str) -> None:
    _decode(status, body, method)
