"""Resolve where to connect: the configured venues, or the embedded simulators when nothing is set."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Collection

from rich.console import Console

from brokerbridge.core.config import VENUES, Config


@contextlib.asynccontextmanager
async def venue_config(
    config: Config,
    *,
    use_sim: bool | None,
    console: Console,
    venues: Collection[str] = ("kraken",),
) -> AsyncIterator[Config]:
    """Yield the config to run with, starting a simulator in-process for each venue that wants one.

    `use_sim=None` (the default) means: a venue with no credentials and no custom URLs runs against
    its simulator, so `brokerbridge watch` shows live data with zero set-up. The start-up and its
    WARNING per simulated venue are sim/embedded.py's (the Python API's `Bridge(simulate=...)` uses
    them too); the simulated venues are named in the yielded config's `simulated`. The yielded
    config runs `venues` only: a command names the venues it needs (`watch primary` needs no
    Kraken connector), whatever `[server] venues` says; all of them (serve's default) leaves a
    Primary with nothing configured out under `--no-sim` rather than refusing it.
    """
    # Here, not at the top: the simulators' servers load only for a command that runs them.
    from brokerbridge.sim.embedded import embedded_simulators

    chosen = tuple(venue for venue in VENUES if venue in venues)
    async with embedded_simulators(config, use_sim=use_sim, venues=chosen) as run_config:
        if chosen == VENUES:
            yield run_config
        else:
            yield dataclasses.replace(
                run_config, server=dataclasses.replace(run_config.server, venues=chosen)
            )
