"""Resolve where to connect: the configured venue, or the embedded simulator when nothing is set."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator

from rich.console import Console

from brokerbridge.core.config import Config
from brokerbridge.core.secret import Secret


@contextlib.asynccontextmanager
async def venue_config(config: Config, *, use_sim: bool | None, console: Console) -> AsyncIterator[Config]:
    """Yield the config to run with, starting the Kraken simulator in-process when it is wanted.

    `use_sim=None` (the default) means: simulator when no Kraken credentials and no custom URLs
    are configured, so `brokerbridge watch` shows live data with zero set-up.
    """
    kraken = config.kraken
    if use_sim is None:
        use_sim = not kraken.has_credentials and kraken.uses_default_endpoints
    if not use_sim:
        yield config
        return
    from brokerbridge.sim.kraken import KrakenSimulator

    async with KrakenSimulator(host="127.0.0.1", port=0) as sim:
        ep = sim.endpoints
        console.print(
            f"[cyan]No Kraken credentials configured: using the local Kraken simulator at {ep.rest} "
            f"(demo account). Configure credentials or URLs to use a real venue.[/]",
            highlight=False,
        )
        yield dataclasses.replace(
            config,
            kraken=dataclasses.replace(
                kraken,
                rest_url=ep.rest,
                ws_url=ep.ws_public,
                ws_auth_url=ep.ws_private,
                api_key=ep.api_key,
                api_secret=Secret(ep.api_secret),
            ),
        )
