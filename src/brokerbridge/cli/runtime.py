"""Resolve where to connect: the configured venues, or the embedded simulators when nothing is set."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import tempfile
from collections.abc import AsyncIterator, Collection

from rich.console import Console

from brokerbridge.core.config import DEFAULT_JOURNAL_PATH, Config, PrimaryConfig
from brokerbridge.core.secret import Secret
from brokerbridge.io.journal_store import MEMORY as MEMORY_JOURNAL

# The simulator notices are log records, not console prints: in plain or JSON logs they are lines
# like any other (stdout stays for what the command was asked to print).
logger = logging.getLogger(__name__)


def wants_kraken_sim(config: Config, use_sim: bool | None) -> bool:
    if use_sim is not None:
        return use_sim
    return not config.kraken.has_credentials and config.kraken.uses_default_endpoints


def wants_primary_sim(config: Config, use_sim: bool | None) -> bool:
    if use_sim is not None:
        return use_sim
    primary = config.primary
    return primary is None or (not primary.has_credentials and primary.rest_url is None)


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
    its simulator, so `brokerbridge watch` shows live data with zero set-up.
    """
    async with contextlib.AsyncExitStack() as stack:
        simulated = 0
        if "kraken" in venues and wants_kraken_sim(config, use_sim):
            simulated += 1
            from brokerbridge.sim.kraken import KrakenSimulator

            kraken_sim = await stack.enter_async_context(KrakenSimulator(host="127.0.0.1", port=0))
            ep = kraken_sim.endpoints
            logger.warning(
                "No Kraken credentials configured: using the local Kraken simulator at %s (demo "
                "account). Configure credentials or URLs to use a real venue.",
                ep.rest,
            )
            config = dataclasses.replace(
                config,
                kraken=dataclasses.replace(
                    config.kraken,
                    rest_url=ep.rest,
                    ws_url=ep.ws_public,
                    ws_auth_url=ep.ws_private,
                    api_key=ep.api_key,
                    api_secret=Secret(ep.api_secret),
                ),
            )
        if "primary" in venues and wants_primary_sim(config, use_sim):
            from brokerbridge.sim.primary import PrimarySimulator

            simulated += 1
            # The simulator's catalogue is its own, not a venue's of the day: never cached on disk.
            sim_cache = stack.enter_context(tempfile.TemporaryDirectory(prefix="brokerbridge-sim-"))

            primary_sim = await stack.enter_async_context(PrimarySimulator(host="127.0.0.1", port=0))
            pe = primary_sim.endpoints
            logger.warning(
                "No Primary credentials configured: using the local Primary simulator at %s (demo "
                "account %s). Configure [primary] to use reMarkets or your broker.",
                pe.rest,
                pe.account,
            )
            config = dataclasses.replace(
                config,
                primary=dataclasses.replace(
                    config.primary or PrimaryConfig(),
                    environment=pe.rest,
                    rest_url=pe.rest,
                    ws_url=pe.ws,
                    user=pe.user,
                    password=Secret(pe.password),
                    account=pe.account,
                    market_hours="always",  # the simulator trades around the clock
                    instruments_cache_dir=sim_cache,
                ),
            )
        if simulated == len(venues) and config.journal_path == DEFAULT_JOURNAL_PATH:
            # Simulators forget their accounts when they stop and reuse seeded ids next time: a
            # durable journal of them would only make the next run's fills look like repeats.
            config = dataclasses.replace(config, journal_path=MEMORY_JOURNAL)
        yield config
