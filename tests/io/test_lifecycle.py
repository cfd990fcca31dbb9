"""Long-running behaviour under fake time: the 15-minute WebSocket token and reconnect backoff."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import pytest
import websockets

from brokerbridge.core.backoff import BackoffPolicy
from brokerbridge.core.clock import FakeClock
from brokerbridge.core.config import KrakenConfig
from brokerbridge.core.events import AnyEvent, Channel, StreamState, StreamStatus, Subscription
from brokerbridge.io.kraken.connector import KrakenConnector
from brokerbridge.io.ws import Connection, connect
from brokerbridge.sim.kraken import KrakenSimulator
from tests.io.rig import rig

pytestmark = pytest.mark.timeout(60)
MINUTE = 60.0


async def test_token_is_refreshed_before_fifteen_minutes_and_reused_on_reconnect() -> None:
    # A calm market and a lenient watchdog let fake time move in 10 s strides.
    async with rig(tick_s=1.0, idle_timeout=30.0, token_refresh_interval=600.0) as r:
        issued: list[str] = []
        set_token = r.kraken.private_session.set_token
        r.kraken.tokens.on_token = lambda token: (issued.append(token), set_token(token))
        balances = r.collect("balances")
        await r.until(lambda: balances.states("kraken:balances")[-1:] == [StreamState.LIVE])
        assert len(issued) == 1

        await r.run_for(9 * MINUTE, step=10.0)
        assert len(issued) == 1  # nothing to do before the refresh interval
        await r.run_for(1.5 * MINUTE, step=10.0)
        assert len(issued) == 2  # proactive refresh at 10 min, connection untouched
        assert r.kraken.private.reconnects == 0
        await r.run_for(6 * MINUTE, step=10.0)  # now 16.5 min after the first token was issued
        assert r.kraken.private.reconnects == 0  # a bound token keeps its connection alive

        # The first token is past Kraken's 15-minute window: a new connection may not use it.
        async with websockets.connect(r.sim.endpoints.ws_private) as ws:
            await ws.recv()  # status
            await ws.send(
                json.dumps({"method": "subscribe", "params": {"channel": "balances", "token": issued[0]}})
            )
            ack = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert ack["success"] is False and ack["error"] == "ESession:Invalid session"

        # A reconnect reuses the current token (issued 6.5 min ago, inside Kraken's window): the
        # stream comes back without a rejection and without a REST call.
        await r.faults(drop_now=True)
        await r.until(lambda: StreamState.RECONNECTING in balances.states("kraken:balances"), step=0.1)
        await r.until(lambda: balances.states("kraken:balances")[-1] == StreamState.LIVE, step=0.1)
        assert len(issued) == 2
        assert r.kraken.private.reconnects == 1
        assert r.kraken.tokens.expires_at is not None and r.kraken.tokens.expires_at > r.clock.time()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_backoff_is_jittered_capped_never_gives_up_and_resets_after_success() -> None:
    clock = FakeClock()
    port = free_port()  # nothing listens here yet: every attempt is refused for real
    base = f"127.0.0.1:{port}"
    attempts: list[float] = []

    @contextlib.asynccontextmanager
    async def recording(url: str, *, redact: Callable[[str], str] | None = None) -> AsyncIterator[Connection]:
        attempts.append(clock.monotonic())
        async with connect(url, redact=redact) as conn:
            yield conn

    events: list[AnyEvent] = []
    policy = BackoffPolicy(initial=0.5, factor=2.0, cap=8.0)
    cfg = kraken_config_for(base, policy)
    connector = KrakenConnector(
        cfg, emit=events.append, clock=clock, rng=random.Random(7), ws_connect=recording
    )
    runner = asyncio.get_running_loop().create_task(connector.run())
    ticker = Subscription(venue="kraken", channel=Channel.TICKER, symbol="BTC/USD")
    try:
        connector.add(ticker)
        for _ in range(480):  # two minutes of fake time
            await clock.advance(0.25)
            await asyncio.sleep(0.001)
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        assert gaps[0] == pytest.approx(0.0, abs=0.26)  # the first retry after a drop is immediate
        ceilings = [0.5, 1.0, 2.0, 4.0, 8.0]
        for gap, ceiling in zip(gaps[1:], ceilings, strict=False):
            assert ceiling / 2 - 0.26 <= gap <= ceiling + 0.26  # jittered within [c/2, c]
        assert all(gap <= 8.0 + 0.26 for gap in gaps)  # capped…
        assert len(attempts) >= 15  # …and it never gave up
        states = [e.state for e in events if isinstance(e, StreamStatus)]
        assert StreamState.STALE in states  # REST is down too: nothing to poll, data is stale
        assert StreamState.LIVE not in states

        # The venue comes back on that port: the next attempt connects and the stream is live.
        async with KrakenSimulator(port=port, seed=3, clock=clock):
            for _ in range(200):
                await clock.advance(0.1)
                await asyncio.sleep(0.001)
                if connector.public.state is StreamState.LIVE:
                    break
            assert connector.public.state is StreamState.LIVE
            assert [e.state for e in events if isinstance(e, StreamStatus)][-1] is StreamState.LIVE
            # After a live spell the backoff starts over: the next drop is retried at once.
            before = len(attempts)
            fired_at = clock.monotonic()
            connector.public_session.handle_timer(fired_at + 60)  # the watchdog fires
            connector.public.notify()
            for _ in range(30):
                await clock.advance(0.01)
                await asyncio.sleep(0.001)
            assert len(attempts) == before + 1
            assert 0 <= attempts[-1] - fired_at <= 0.3  # reconnected at once: the backoff started over
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await connector.aclose()


def kraken_config_for(base: str, policy: BackoffPolicy) -> KrakenConfig:
    return replace(
        KrakenConfig(),
        rest_url=f"http://{base}",
        ws_url=f"ws://{base}/v2",
        ws_auth_url=f"ws://{base}/auth/v2",
        poll_after=1.0,
        poll_interval=2.0,
        backoff=policy,
    )
