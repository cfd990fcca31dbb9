"""The embedded simulators: started in-process for the venues that run without a real venue behind
them, and the config pointed at them.

`serve`, `watch`, `doctor`, `instruments` (through cli/runtime.py) and the Python API
(`Bridge(config, simulate=...)`) start them here, by one rule. A venue that runs on a simulator is
named in `Config.simulated`, so everything downstream says so (`/api/venues`, the dashboard's
SIMULADOR badge, `watch`'s banner), and one WARNING per simulated venue is logged as it starts.

Only whole venues are simulated: a venue configured in part is refused by `load_config` before it
gets here, so a half-typed `[primary]` never turns into a fake market.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import tempfile
from collections.abc import AsyncIterator, Collection

from brokerbridge.core.config import DEFAULT_JOURNAL_PATH, Config, PrimaryConfig
from brokerbridge.core.secret import Secret

logger = logging.getLogger(__name__)
# The WARNINGs say "local <Venue> simulator at <URL>": tests/browser/serve_process.py finds the
# simulators' addresses (and their fault switches) in what `serve` logs by these words.


def wants_kraken_sim(config: Config, use_sim: bool | None) -> bool:
    """`use_sim` None: Kraken runs on its simulator when it has no credentials and no URL of its own."""
    if use_sim is not None:
        return use_sim
    return not config.kraken.has_credentials and config.kraken.uses_default_endpoints


def wants_primary_sim(config: Config, use_sim: bool | None) -> bool:
    """`use_sim` None: Primary runs on its simulator when it has no credentials (load_config refuses
    an environment or URL without them, so that means: nothing of Primary but tuning is set)."""
    if use_sim is not None:
        return use_sim
    primary = config.primary
    return primary is None or (not primary.has_credentials and primary.rest_url is None)


def _reason(use_sim: bool | None, venue: str) -> str:
    return "--sim / simulate=True" if use_sim else f"no {venue} credentials configured"


@contextlib.asynccontextmanager
async def embedded_simulators(
    config: Config, *, use_sim: bool | None, venues: Collection[str]
) -> AsyncIterator[Config]:
    """Yield the config to run with, a simulator started in-process for each of `venues` that
    wants one (`use_sim`: True every one, False none, None the rule of `wants_*_sim`); they stop
    when the block ends. The yielded config names them in `simulated`."""
    async with contextlib.AsyncExitStack() as stack:
        simulated: set[str] = set(config.simulated)
        if "kraken" in venues and wants_kraken_sim(config, use_sim):
            from brokerbridge.sim.kraken import KrakenSimulator

            kraken_sim = await stack.enter_async_context(KrakenSimulator(host="127.0.0.1", port=0))
            ep = kraken_sim.endpoints
            logger.warning(
                "kraken is SIMULATED (%s): the local Kraken simulator at %s with its demo account — "
                "not a real market. Configure kraken.api_key / api_secret (or URLs) to use Kraken.",
                _reason(use_sim, "Kraken"),
                ep.rest,
            )
            simulated.add("kraken")
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

            # The simulator's catalogue is its own, not a venue's of the day: never cached on disk.
            sim_cache = stack.enter_context(tempfile.TemporaryDirectory(prefix="brokerbridge-sim-"))
            primary_sim = await stack.enter_async_context(PrimarySimulator(host="127.0.0.1", port=0))
            pe = primary_sim.endpoints
            logger.warning(
                "primary is SIMULATED (%s): the local Primary simulator at %s with its demo account "
                "%s — not a real market. Configure [primary] (environment, user, password) to use "
                "reMarkets or your broker.",
                _reason(use_sim, "Primary"),
                pe.rest,
                pe.account,
            )
            simulated.add("primary")
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
        if simulated and simulated >= set(venues) and config.journal_path == DEFAULT_JOURNAL_PATH:
            # Simulators forget their accounts when they stop and reuse seeded ids next time: a
            # durable journal of them would only make the next run's fills look like repeats.
            config = dataclasses.replace(config, journal_path=None)
        yield dataclasses.replace(config, simulated=frozenset(simulated))
