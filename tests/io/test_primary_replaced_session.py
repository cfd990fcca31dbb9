"""A 401 to a Primary token that worked until now is told apart from one that never worked: Primary
keeps one session per user, so the likeliest cause is another login with the same user (another
program, a tool run standalone next to `serve`) — the warning says so and what to do."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from brokerbridge.core.events import StreamState
from brokerbridge.io.primary.rest import REPLACED_SESSION
from brokerbridge.venues.primary import rest as codec
from tests.io.primary_rig import primary_rig

LIVE = StreamState.LIVE


async def test_a_401_after_a_login_elsewhere_says_the_session_may_have_been_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="brokerbridge.io.primary.rest")
    async with primary_rig(tmp_path) as r:
        segments = await r.call(r.primary.rest.call(codec.segments_request()))
        assert r.primary.rest.replaced_sessions == 0
        assert r.psim is not None
        ep = r.psim.endpoints
        # Another program logs in with the same user: Primary revokes this bridge's token.
        assert r.psim.exchange.login(ep.user, ep.password) is not None
        again = await r.call(r.primary.rest.call(codec.segments_request()))
        assert again == segments  # logged in again once, and answered
        assert r.primary.rest.replaced_sessions == 1
        assert [rec.msg for rec in caplog.records].count(REPLACED_SESSION) == 1


async def test_a_socket_silenced_by_a_login_elsewhere_says_so_once(tmp_path: Path) -> None:
    async with primary_rig(tmp_path) as r:
        executions = r.collect_primary("executions")
        await r.until(lambda: executions.states("primary:executions")[-1:] == [LIVE])
        logins = r.primary.tokens.fetches
        assert r.psim is not None
        ep = r.psim.endpoints
        assert r.psim.exchange.login(ep.user, ep.password) is not None  # the same user, elsewhere
        # Whichever notices first — the silence watchdog or the periodic token check — logs in
        # again once and says why.
        await r.until(lambda: r.primary.tokens.fetches == logins + 1, step=0.5, what="re-login")
        await r.until(lambda: r.primary.stream.state is LIVE, step=0.1, what="live again")
        assert r.primary.rest.replaced_sessions == 1
