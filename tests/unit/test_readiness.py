"""`venue_readiness`: a venue's readiness from the statuses of the account streams the Bridge holds."""

from __future__ import annotations

from brokerbridge.core.events import StreamState, StreamStatus
from brokerbridge.services.readiness import NO_ACCOUNT, venue_readiness

CONNECTING, LIVE = StreamState.CONNECTING, StreamState.LIVE


def status(stream: str, state: StreamState, reason: str = "") -> StreamStatus:
    return StreamStatus(venue="kraken", ts=0.0, stream=f"kraken:{stream}", state=state, reason=reason)


def test_starting_then_ready_then_degraded_then_ready() -> None:
    start = venue_readiness(
        "kraken", [status("balances", CONNECTING), status("executions", CONNECTING)], loaded=False, balances=0
    )
    assert start.state == "starting" and "kraken:balances" in start.reason and start.remedy
    # Live, but the snapshot not in yet: still starting.
    live = [status("balances", LIVE), status("executions", LIVE)]
    waiting = venue_readiness("kraken", live, loaded=False, balances=0)
    assert waiting.state == "starting" and "balances snapshot" in waiting.reason
    ready = venue_readiness("kraken", live, loaded=True, balances=5)
    assert ready.ready and ready.remedy == "" and "5 balances" in ready.reason
    assert ready.account_streams == {"kraken:balances": LIVE, "kraken:executions": LIVE}
    down = [
        status("balances", StreamState.POLLING, "stream down; serving REST polls"),
        status("executions", LIVE),
    ]
    degraded = venue_readiness("kraken", down, loaded=True, balances=5)
    assert degraded.state == "degraded" and "kraken:balances is polling: stream down" in degraded.reason
    assert "doctor kraken" in degraded.remedy and not degraded.ready


def test_a_failure_before_the_first_snapshot_is_degraded_not_starting() -> None:
    refused = status("balances", StreamState.RECONNECTING, "Cannot get WebSocket token: permission denied")
    readiness = venue_readiness(
        "kraken", [refused, status("executions", CONNECTING)], loaded=False, balances=0
    )
    assert readiness.state == "degraded" and "permission denied" in readiness.reason
    assert "not loaded yet" in readiness.reason


def test_a_venue_with_no_account_is_ready_for_market_data() -> None:
    readiness = venue_readiness("kraken", [], loaded=False, balances=0)
    assert readiness.ready and readiness.reason == NO_ACCOUNT
