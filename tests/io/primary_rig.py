"""A Primary simulator + bridge, both on one FakeClock, in memory or on loopback (see tests/io/rig.py)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brokerbridge.bridge import Bridge
from brokerbridge.core.backoff import BackoffPolicy
from brokerbridge.core.clock import FakeClock
from brokerbridge.core.config import Config, OptionsConfig, PrimaryConfig, ServerConfig
from brokerbridge.core.secret import Secret
from brokerbridge.io.inprocess import InProcessNetwork
from brokerbridge.sim.primary import PrimarySimulator
from tests.io.rig import Collector, Rig, post_faults

GGAL = "MERV - XMEV - GGAL - 24hs"
AL30 = "MERV - XMEV - AL30 - 24hs"


@dataclass
class PrimaryRig(Rig):
    psim: PrimarySimulator | None = None

    @property
    def primary(self):
        return self.bridge.connectors["primary"]

    def collect_primary(self, channel: str, symbol: str | None = None, **kw: Any) -> Collector:
        return self.collect(channel, symbol, venue="primary", **kw)

    async def primary_faults(self, **switches: Any) -> dict[str, Any]:
        assert self.psim is not None
        return await post_faults(self.psim.endpoints.control, switches, self.network)


@contextlib.asynccontextmanager
async def primary_rig(
    tmp_path: Path,
    *,
    seed: int = 5,
    tick_s: float = 0.5,
    loopback: bool = False,
    hold_accounts: bool = True,
    options: OptionsConfig | None = None,
    journal_store: Any = None,
    only: bool = False,
    **changes: Any,
) -> AsyncIterator[PrimaryRig]:
    """`journal_store`: the store to journal to (a cluster holder's `RedisJournalStore`);
    `only`: run Primary alone (`[server] venues`), as a cluster's Primary holder does."""
    # tick_s: each step of the Primary market (358 instruments) costs ~30 ms of CPU, and `Md` frames
    # go out at most every 0.5 s per instrument anyway; the simulator's own default is 0.1 s.
    clock = FakeClock()
    async with contextlib.AsyncExitStack() as stack:
        psim = await stack.enter_async_context(
            PrimarySimulator(port=0, seed=seed, clock=clock, tick_s=tick_s)
        )
        if loopback:
            # Fake time runs far ahead of real time: the simulator's idle-close would otherwise count
            # minutes the client's real-time ping frames never had a chance to cover. (In memory the
            # client pings on the fake clock.)
            psim.faults.apply({"idle_close_s": 0})
        network = None if loopback else await stack.enter_async_context(InProcessNetwork(psim, clock=clock))
        ep = psim.endpoints
        primary = PrimaryConfig(
            environment=ep.rest,
            rest_url=ep.rest,
            ws_url=ep.ws,
            user=ep.user,
            password=Secret(ep.password),
            account=ep.account,
            market_hours="always",
            idle_timeout=30.0,
            poll_after=1.0,
            poll_interval=1.0,
            instruments_cache_dir=str(tmp_path),
            backoff=BackoffPolicy(initial=0.5, factor=2.0, cap=8.0),
        )
        primary = dataclasses.replace(primary, **changes)
        transports = None if network is None else network.transports
        bridge = await stack.enter_async_context(
            Bridge(
                Config(
                    primary=primary,
                    options=options or OptionsConfig(),
                    server=ServerConfig(venues=("primary",)) if only else ServerConfig(),
                ),
                clock=clock,
                transports=transports,
                hold_accounts=hold_accounts,
                journal_store=journal_store,
            )
        )
        rig = PrimaryRig(clock, psim, bridge, network)  # type: ignore[arg-type]
        rig.psim = psim
        try:
            yield rig
        finally:
            await rig.stop_collecting()
