"""core/health.py: the typed health Structs, their JSON, and what makes a stream degraded."""

from __future__ import annotations

import msgspec
import pytest

from brokerbridge.client import models
from brokerbridge.core.events import StreamState
from brokerbridge.core.health import SEVERITY, StreamHealth, VenueHealth, overall_status

S = StreamState


def connection(state: StreamState, subscriptions: dict[str, StreamState]) -> StreamHealth:
    return StreamHealth(
        state=state,
        mode="ws",
        connected=state is S.LIVE,
        reconnects=2,
        seconds_since_last_message=0.25,
        last_error=None if state is S.LIVE else "REST reconciliation failing: EAPI:Invalid nonce",
        subscriptions=subscriptions,
        url="wss://ws.example/v2",
    )


def kraken(public: StreamHealth, private: StreamHealth) -> VenueHealth:
    return VenueHealth(
        venue="kraken",
        credentials=True,
        token_expires_at=1_767_226_500.0,
        streams={"public": public, "private": private},
        rest_url="https://api.example",
    )


def test_a_venue_survives_the_wire_into_the_clients_types_unchanged() -> None:
    venue = kraken(
        connection(S.LIVE, {"kraken:ticker:BTC/USD": S.LIVE}),
        connection(S.STALE, {"kraken:balances": S.STALE}),
    )
    body = models.HealthResponse(status=overall_status([venue]), venues={"kraken": venue})
    wire = msgspec.json.encode(body)
    back = msgspec.json.decode(wire, type=models.HealthResponse)
    assert back.status == "degraded" and back.venues["kraken"] == venue
    # The field names and values clients have always read, states as their text.
    private = msgspec.json.decode(wire)["venues"]["kraken"]["streams"]["private"]
    assert private == {
        "state": "stale",
        "mode": "ws",
        "connected": False,
        "reconnects": 2,
        "seconds_since_last_message": 0.25,
        "last_error": "REST reconciliation failing: EAPI:Invalid nonce",
        "subscriptions": {"kraken:balances": "stale"},
        "url": "wss://ws.example/v2",
    }
    assert msgspec.json.decode(wire)["venues"]["kraken"]["environment"] is None


def test_an_unknown_state_or_mode_is_refused_when_decoded() -> None:
    body = msgspec.json.encode(connection(S.LIVE, {}))
    with pytest.raises(msgspec.ValidationError, match="state"):
        msgspec.json.decode(body.replace(b'"live"', b'"fine"'), type=StreamHealth)
    with pytest.raises(msgspec.ValidationError, match="mode"):
        msgspec.json.decode(body.replace(b'"ws"', b'"carrier pigeon"'), type=StreamHealth)


def test_a_stream_is_degraded_only_while_something_wanted_is_not_live() -> None:
    assert not connection(S.LIVE, {"kraken:ticker:BTC/USD": S.LIVE}).degraded()
    assert not connection(S.RECONNECTING, {}).degraded()  # nobody wants anything there
    for state in set(S) - {S.LIVE}:
        assert connection(state, {"kraken:balances": state}).degraded(), state
    healthy = kraken(connection(S.LIVE, {"kraken:ticker:BTC/USD": S.LIVE}), connection(S.CONNECTING, {}))
    sick = kraken(connection(S.LIVE, {}), connection(S.STALE, {"kraken:balances": S.STALE}))
    assert not healthy.degraded() and sick.degraded()
    assert overall_status([healthy]) == "ok" and overall_status([healthy, sick]) == "degraded"
    assert overall_status([]) == "ok"


def test_polled_streams_report_their_worst_state_and_no_connection() -> None:
    assert StreamHealth.polled({}) is None
    assert list(SEVERITY) == [S.IDLE, S.LIVE, S.POLLING, S.RESYNCING, S.CONNECTING, S.RECONNECTING, S.STALE]
    assert set(SEVERITY) == set(S)  # every state has a rank
    risk = StreamHealth.polled({"primary:positions": S.LIVE, "primary:balances": S.STALE})
    assert risk is not None and risk.state is S.STALE and risk.mode == "rest"
    assert (risk.connected, risk.reconnects, risk.seconds_since_last_message, risk.url) == (None,) * 4
    assert risk.subscriptions == {"primary:positions": S.LIVE, "primary:balances": S.STALE}
    assert risk.degraded()
    connecting = StreamHealth.polled({"primary:positions": S.LIVE, "primary:balances": S.CONNECTING})
    assert connecting is not None and connecting.state is S.CONNECTING
