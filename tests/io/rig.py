"""A simulator + bridge, both on one FakeClock, and helpers to move time until something is true.

By default the bridge reaches the simulator in memory (brokerbridge.io.inprocess): a frame crosses
within the event-loop turns `FakeClock.advance` settles, so moving time needs no real sleep and no
outcome depends on how loaded the machine is. `loopback=True` puts real sockets in between (for the
tests that keep the socket path covered): then each step also sleeps a millisecond for real so the
bytes can cross, and a loaded machine can make fake time outrun them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import httpx

from brokerbridge.bridge import Bridge
from brokerbridge.core.backoff import BackoffPolicy
from brokerbridge.core.clock import FakeClock
from brokerbridge.core.config import Config, KrakenConfig
from brokerbridge.core.errors import BrokerBridgeError
from brokerbridge.core.events import AnyEvent, Side, StreamState, StreamStatus
from brokerbridge.core.orders import OrderAck, OrderRequest
from brokerbridge.core.secret import Secret
from brokerbridge.io.inprocess import InProcessNetwork
from brokerbridge.io.transports import Barred, Transports, guarded
from brokerbridge.sim.kraken import KrakenSimulator


@dataclass
class Collector:
    events: list[AnyEvent] = field(default_factory=list)
    refused: BrokerBridgeError | None = None  # how the stream ended, if the venue refused it

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def states(self, stream: str) -> list[StreamState]:
        return [e.state for e in self.of(StreamStatus) if e.stream == stream]


@dataclass
class Rig:
    clock: FakeClock
    sim: KrakenSimulator
    bridge: Bridge
    network: InProcessNetwork | None = None  # None: loopback sockets
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def kraken(self):
        return self.bridge.connectors["kraken"]

    def collect(
        self, channel: str, symbol: str | None = None, *, venue: str = "kraken", **kw: Any
    ) -> Collector:
        collector = Collector()

        async def pump() -> None:
            try:
                async for event in self.bridge.subscribe(venue, channel, symbol, **kw):
                    collector.events.append(event)
            except BrokerBridgeError as exc:
                collector.refused = exc

        self.tasks.append(asyncio.get_running_loop().create_task(pump()))
        return collector

    async def stop_collecting(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def faults(self, **switches: Any) -> dict[str, Any]:
        return await post_faults(self.sim.endpoints.control, switches, self.network)

    async def step(self, seconds: float) -> None:
        """Move fake time by `seconds`; what it set off has run when this returns."""
        await self.clock.advance(seconds)
        if self.network is None:
            # Let loopback bytes cross: a real event-loop turn with I/O polling, not a timed wait.
            await asyncio.sleep(0.001)

    async def until(
        self, predicate: Callable[[], bool], *, within: float = 120.0, step: float = 0.05, what: str = ""
    ) -> float:
        """Advance fake time in `step`s until `predicate()`; return the fake seconds it took."""
        start = self.clock.monotonic()
        while not predicate():
            if self.clock.monotonic() - start > within:
                raise AssertionError(f"not within {within}s of fake time: {what or predicate}")
            await self.step(step)
        return self.clock.monotonic() - start

    async def call(self, coro: Any) -> Any:
        """Await `coro` while fake time moves (it may wait on the clock, e.g. REST pacing)."""
        task = asyncio.get_running_loop().create_task(coro)
        await self.until(task.done, step=0.25, what="call finished")
        return task.result()

    async def place(self, request: OrderRequest) -> OrderAck:
        """`Bridge.place` while fake time moves."""
        ack: OrderAck = await self.call(self.bridge.place(request))
        return ack

    async def run_for(self, seconds: float, *, step: float = 0.05) -> None:
        end = self.clock.monotonic() + seconds
        while self.clock.monotonic() < end:
            await self.step(step)


async def post_faults(
    control_url: str, switches: dict[str, Any], network: InProcessNetwork | None = None
) -> dict[str, Any]:
    """Set fault switches through a simulator's HTTP control endpoint, as a test harness would
    (over `network` when the rig runs in memory)."""
    if network is not None:
        client = network.http_client(timeout=10.0)
        try:
            answer = await client.request("POST", f"{control_url}/faults", content=json.dumps(switches))
        finally:
            await client.aclose()
        assert answer.status == 200, answer.body
        return json.loads(answer.body)
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{control_url}/faults", json=switches)
        response.raise_for_status()
        return response.json()


def btc_usd(
    qty: str, price: str | None = None, *, side: Side = Side.BUY, client_order_id: str | None = None
) -> OrderRequest:
    """A Kraken BTC/USD order for `Bridge.place`: a limit order at `price`, a market order without one."""
    return OrderRequest(
        venue="kraken",
        symbol="BTC/USD",
        side=side,
        type="market" if price is None else "limit",
        qty=Decimal(qty),
        price=None if price is None else Decimal(price),
        client_order_id=client_order_id,
    )


def kraken_config(sim: KrakenSimulator, **changes: Any) -> KrakenConfig:
    ep = sim.endpoints
    base = KrakenConfig(
        rest_url=ep.rest,
        ws_url=ep.ws_public,
        ws_auth_url=ep.ws_private,
        api_key=ep.api_key,
        api_secret=Secret(ep.api_secret),
        idle_timeout=5.0,
        poll_after=1.0,
        poll_interval=2.0,
        backoff=BackoffPolicy(initial=0.5, factor=2.0, cap=8.0),
    )
    return replace(base, **changes)


@contextlib.asynccontextmanager
async def rig(
    seed: int = 11,
    tick_s: float = 0.01,
    *,
    loopback: bool = False,
    hold_accounts: bool = True,
    **config_changes: Any,
) -> AsyncIterator[Rig]:
    """`hold_accounts=False`: the Bridge opens no account session of its own (for tests of one REST
    call or one stream, which the account session's own calls would otherwise share the venue with)."""
    clock = FakeClock()
    async with KrakenSimulator(port=0, seed=seed, clock=clock, tick_s=tick_s) as sim:
        config = Config(kraken=kraken_config(sim, **config_changes))
        async with rig_on(sim, clock, config, loopback=loopback, hold_accounts=hold_accounts) as r:
            yield r


@contextlib.asynccontextmanager
async def rig_on(
    sim: KrakenSimulator,
    clock: FakeClock,
    config: Config,
    *,
    loopback: bool = False,
    hold_accounts: bool = True,
    journal_store: Any = None,
    barred: Barred | None = None,
) -> AsyncIterator[Rig]:
    """A Bridge with `config` on a running simulator; the rig's collector tasks end with it.
    `journal_store`: the store to journal to (a cluster holder's `RedisJournalStore`), instead of
    the one `config.journal_path` names; `barred`: the Bridge's transports are `guarded` by it (a
    cluster holder's, refusing while its lease is not valid)."""
    async with contextlib.AsyncExitStack() as stack:
        network = None if loopback else await stack.enter_async_context(InProcessNetwork(sim, clock=clock))
        transports = None if network is None else network.transports
        if barred is not None:
            transports = guarded(transports or Transports(), barred)
        bridge = await stack.enter_async_context(
            Bridge(
                config,
                clock=clock,
                transports=transports,
                hold_accounts=hold_accounts,
                journal_store=journal_store,
            )
        )
        r = Rig(clock, sim, bridge, network)
        try:
            yield r
        finally:
            await r.stop_collecting()
