"""Target 4: recovery after the simulator drops every connection.

A `Bridge` on the Kraken simulator (real clock, loopback, the default backoff) streams ticker, book
and trades for BTC/USD and ETH/USD plus balances and executions. Each round: `faults.drop_now()`
closes every WebSocket; we time (a) until every stream has reported LIVE again and (b) until a
balance snapshot has arrived after the drop with no balance marked stale (reconciled). p50/p99 over
the rounds. Baseline, same simulator, same rounds: the floor of any client — one raw `websockets`
connection opened, one book subscribed, its snapshot received.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import websockets

from bench.common import SEED, Report, percentile
from brokerbridge.bridge import Bridge
from brokerbridge.core.config import Config, KrakenConfig
from brokerbridge.core.events import BalanceSnapshot, StreamState, StreamStatus
from brokerbridge.core.secret import Secret
from brokerbridge.sim.kraken import KrakenSimulator

STREAMS: list[tuple[str, str | None, dict[str, Any]]] = [
    *((channel, symbol, {}) for channel in ("ticker", "book", "trades") for symbol in ("BTC/USD", "ETH/USD")),
    ("balances", None, {}),
    ("executions", None, {}),
]


class _Watch:
    def __init__(self) -> None:
        self.live_at: dict[str, float] = {}  # stream → when it last turned LIVE
        self.down: set[str] = set()
        self.balances_at = 0.0

    def see(self, event: Any) -> None:
        if isinstance(event, StreamStatus):
            if event.state is StreamState.LIVE:
                self.live_at[event.stream] = time.monotonic()
                self.down.discard(event.stream)
            else:
                self.down.add(event.stream)
        elif isinstance(event, BalanceSnapshot):
            self.balances_at = time.monotonic()


async def _until(predicate: Any, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("recovery did not complete within 30 s")
        await asyncio.sleep(0.002)


async def _run(rounds: int, spacing: float) -> Report:
    report = Report("recovery")
    async with KrakenSimulator(host="127.0.0.1", port=0, seed=SEED) as sim:
        ends = sim.endpoints
        kraken = KrakenConfig(
            rest_url=ends.rest, ws_url=ends.ws_public, ws_auth_url=ends.ws_private,
            api_key=ends.api_key, api_secret=Secret(ends.api_secret),
        )  # fmt: skip
        watch = _Watch()
        async with Bridge(Config(kraken=kraken, journal_path=":memory:")) as bridge:

            async def pump(channel: str, symbol: str | None) -> None:
                async for event in bridge.subscribe("kraken", channel, symbol):
                    watch.see(event)

            tasks = [asyncio.create_task(pump(channel, symbol)) for channel, symbol, _ in STREAMS]
            expected = len(STREAMS)
            await _until(lambda: len(watch.live_at) == expected and not watch.down)
            streams_live, balances_ok = [], []
            for _ in range(rounds):
                # Drops are spaced so that each round starts from a settled bridge: every reconnect
                # spends Kraken REST budget (a new WebSocket token, trade backfills, a balance
                # reconcile), and back-to-back drops measure the REST pacer instead (README).
                await asyncio.sleep(spacing)
                dropped = time.monotonic()
                sim.faults.drop_now()
                await _until(lambda: bool(watch.down))
                await _until(lambda: not watch.down and min(watch.live_at.values()) > dropped)  # noqa: B023
                streams_live.append(max(watch.live_at.values()) - dropped)
                await _until(
                    lambda: (
                        watch.balances_at > dropped  # noqa: B023
                        and not any(view.stale for view in bridge.balances("kraken").values())
                    )
                )
                balances_ok.append(watch.balances_at - dropped)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        floor = [await _raw_resubscribe(ends.ws_public) for _ in range(rounds)]
    report.add("all streams live p50", percentile(streams_live, 0.5), "s")
    report.add("all streams live p99", percentile(streams_live, 0.99), "s")
    report.add("balances reconciled p50", percentile(balances_ok, 0.5), "s")
    report.add("balances reconciled p99", percentile(balances_ok, 0.99), "s")
    report.add("baseline raw connect+book snapshot p99", percentile(floor, 0.99), "s")
    report.ratio(
        "streams live p99 / baseline", "all streams live p99", "baseline raw connect+book snapshot p99"
    )
    report.target("all streams live p99", "<=", 1)
    report.target("balances reconciled p99", "<=", 2)
    report.note(
        f"{rounds} drops of every connection {spacing:g} s apart, {len(STREAMS)} streams, loopback, real time"
    )
    return report


async def _raw_resubscribe(url: str) -> float:
    start = time.monotonic()
    async with websockets.connect(url, compression=None) as ws:
        await ws.send(
            json.dumps({"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}})
        )
        while '"type":"snapshot"' not in str(await asyncio.wait_for(ws.recv(), 30)):
            pass
    return time.monotonic() - start


def run(smoke: bool) -> list[Report]:
    return [asyncio.run(_run(1, 0.5) if smoke else _run(10, 3.0))]
