"""A venue's readiness from its account streams: `starting`, `ready` or `degraded`, with why.

Liveness (`/api/health`) says the process runs; readiness (`/api/ready`, `Bridge.readiness()`) says
a bot may rely on the account now. The Bridge holds each venue's account streams (balances,
executions) open from start; the venue is

* `starting` until its balances snapshot came and every account stream is live — while nothing
  failed yet (the first login, token and subscriptions are under way);
* `ready` once the snapshot came and every account stream is live;
* `degraded` while an account stream is not live (reconnecting, polled from REST, stale, refused) —
  before the first snapshot too, once an attempt failed: the reason is the stream's own status
  reason (which carries the venue's error and its remedy).

A venue with no account (no credentials) has nothing to load: `ready` for its market data, which
opens on demand. Pure: statuses in, a `VenueReadiness` out.
"""

from __future__ import annotations

from collections.abc import Sequence

from brokerbridge.core.events import StreamState, StreamStatus
from brokerbridge.core.health import VenueReadiness

NO_ACCOUNT = "no account configured: market data only (its streams open on demand)"


def venue_readiness(
    venue: str, statuses: Sequence[StreamStatus], *, loaded: bool, balances: int
) -> VenueReadiness:
    """`statuses`: the current status of each account stream the Bridge holds (none: no account);
    `loaded`: the balances snapshot came; `balances`: how many assets it holds now."""
    streams = {status.stream: status.state for status in statuses}
    if not statuses:
        return VenueReadiness(state="ready", reason=NO_ACCOUNT)
    down = [status for status in statuses if status.state is not StreamState.LIVE]
    failing = [status for status in down if status.state is not StreamState.CONNECTING]
    if failing:
        worst = failing[0]
        return VenueReadiness(
            state="degraded",
            reason=f"{worst.stream} is {worst.state.value}: {worst.reason}"
            + ("" if loaded else " (the account is not loaded yet)"),
            remedy=f"brokerbridge retries on its own (REST polling meanwhile where it can); if this "
            f"lasts, see GET /api/health and run `brokerbridge doctor {venue}`",
            account_streams=streams,
        )
    if down or not loaded:
        waiting = ", ".join(status.stream for status in down) or f"{venue}:balances snapshot"
        return VenueReadiness(
            state="starting",
            reason=f"logging in and loading the account: waiting for {waiting}",
            remedy="wait a few seconds: the account loads at start, with or without clients "
            "(GET /api/ready answers 200 then; in Python `await bridge.wait_ready()`)",
            account_streams=streams,
        )
    return VenueReadiness(
        state="ready",
        reason=f"account loaded ({balances} balances); {', '.join(streams)} live",
        account_streams=streams,
    )
