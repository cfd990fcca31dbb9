"""Kraken WebSocket tokens refused again and again: the connector backs off (≥ 1 s, doubling to
60 s, on the injected clock) and says so with one ERROR naming the permission and the doctor.

Two ways Kraken refuses: GetWebSocketsToken answers `EGeneral:Permission denied` (the key lacks
“Access WebSockets API”: the simulator's `deny_permissions`), or it issues tokens the private socket
refuses one after the other (`stale_tokens: -1`). The simulator counts the GetWebSocketsToken calls
it receives; fake time moves, so a minute costs no real seconds.
"""

from __future__ import annotations

import itertools
import logging

import pytest

from brokerbridge.core.events import StreamState, StreamStatus
from tests.io.rig import Collector, Rig, rig
from tests.io.test_recovery import market_buy

TOKEN = "GetWebSocketsToken"


def _token_calls(r: Rig) -> int:
    return r.sim.exchange.private_calls[TOKEN]


def _said_once_at_error(caplog: pytest.LogCaptureFixture) -> None:
    """One ERROR record in all, naming the permission and the doctor."""
    errors = [x for x in caplog.records if x.name.startswith("brokerbridge.") and x.levelno >= logging.ERROR]
    assert len(errors) == 1, [e.getMessage() for e in errors]
    assert "Access WebSockets API" in errors[0].getMessage()
    assert "brokerbridge doctor kraken" in errors[0].getMessage()


def _reasons(balances: Collector) -> list[str]:
    return [s.reason for s in balances.of(StreamStatus) if s.stream == "kraken:balances"]


async def _calls_at(r: Rig, seconds: float) -> list[float]:
    """Fake times (from now) at which the simulator received a token request, over `seconds`."""
    seen, times, start = _token_calls(r), [], r.clock.monotonic()
    while r.clock.monotonic() - start < seconds:
        await r.step(0.25)
        now = _token_calls(r)
        times += [r.clock.monotonic() - start] * (now - seen)
        seen = now
    return times


async def test_tokens_refused_on_the_socket_are_asked_for_ever_more_slowly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="brokerbridge")
    async with rig() as r:
        await r.faults(stale_tokens=-1)  # every token Kraken issues, its private socket refuses
        balances = r.collect("balances")
        await r.until(lambda: _token_calls(r) >= 2, what="the first tokens")
        times = await _calls_at(r, 180)
        # Before: a new token after every refusal, as fast as the link answers (~20 a second on
        # Kraken, here until the REST pacer held it to one per 2 s: 90+ in three minutes).
        assert len(times) <= 10, times
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(gap >= 1.0 for gap in gaps), gaps  # never faster than a second
        assert max(gaps) <= 60.0 + 0.5 and max(gaps) >= 30.0, gaps  # doubling, up to the cap
        assert StreamState.LIVE not in balances.states("kraken:balances")
        # Said once, at ERROR, naming the permission and the doctor; the stream says why it waits.
        _said_once_at_error(caplog)
        assert any("WebSocket tokens in a row" in reason for reason in _reasons(balances))
        # Tokens accepted again: the stream is live within the cap.
        await r.faults(stale_tokens=0)
        took = await r.until(lambda: balances.states("kraken:balances")[-1:] == [StreamState.LIVE], step=0.25)
        assert took <= 60.0 + 1


async def test_a_denied_token_permission_is_retried_at_most_once_a_minute_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="brokerbridge")
    async with rig() as r:
        await r.faults(deny_permissions=["websockets"])  # GetWebSocketsToken: EGeneral:Permission denied
        balances = r.collect("balances")
        await r.until(lambda: _token_calls(r) >= 1, what="the first token request")
        times = await _calls_at(r, 300)
        # Before: retried every 5–10 s for as long as it lasted (30+ in five minutes).
        assert len(times) <= 14, times
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(gap >= 1.0 for gap in gaps) and max(gaps) >= 30.0, gaps
        _said_once_at_error(caplog)
        named = [x for x in _reasons(balances) if "Access WebSockets API" in x]
        assert any("brokerbridge doctor kraken" in x for x in named)


async def test_a_token_that_served_a_resync_is_not_counted_as_refused_on_issue(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Chaos seed 918273: tokens invalidated, the refusal came on a resync (a skipped sequence
    # number), the new token then served the resync for 22 s, and the next invalidation was taken
    # for a second token "refused right after issuing it": the permission ERROR, wrongly. A
    # resync's snapshot proves the token as much as a first subscription does.
    caplog.set_level(logging.DEBUG, logger="brokerbridge")
    async with rig() as r:
        balances = r.collect("balances")
        await r.until(lambda: balances.states("kraken:balances")[-1:] == [StreamState.LIVE], what="live")
        fetches = r.kraken.tokens.fetches
        await r.faults(invalidate_tokens=True, skip_sequence=["balances"])
        await market_buy(r)  # its balance update skips a number: a resync, with the revoked token
        await r.until(lambda: r.kraken.tokens.fetches > fetches, what="a new token for the refused one")
        await r.until(
            lambda: balances.states("kraken:balances")[-1:] == [StreamState.LIVE], what="live on a new token"
        )
        await r.step(20)
        reconnects = r.kraken.private.reconnects
        await r.faults(invalidate_tokens=True, drop_now=True)
        await r.until(lambda: r.kraken.private.reconnects > reconnects, what="reconnected")
        await r.until(
            lambda: balances.states("kraken:balances")[-1:] == [StreamState.LIVE], what="live again"
        )
        records = caplog.records
        errors = [x for x in records if x.name.startswith("brokerbridge.") and x.levelno >= logging.ERROR]
        assert errors == [], [e.getMessage() for e in errors]
