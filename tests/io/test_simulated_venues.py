"""Which venues run, and which of them are the embedded simulators: `[server] venues` / `--venue`,
`Bridge(config, simulate=...)` (the Python API offline), and `Config.simulated` marking them.

Real simulators on loopback, real time, every test bounded by `asyncio.timeout`; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import httpx
import pytest
from rich.console import Console

from brokerbridge.bridge import Bridge
from brokerbridge.cli.runtime import venue_config
from brokerbridge.core.config import KRAKEN_REST_URL, Config, ServerConfig, load_config
from brokerbridge.core.errors import ConfigError, UnknownVenue
from brokerbridge.core.events import BalanceSnapshot, BookSnapshot
from brokerbridge.core.secret import Secret
from brokerbridge.server import BridgeServer, ServerSettings

LIMIT = 20.0  # seconds, per test
KRAKEN_ONLY = Config(server=ServerConfig(venues=("kraken",)))


def simulator_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "brokerbridge.sim.embedded" and r.levelno == logging.WARNING
    ]


async def test_the_python_api_runs_offline_on_the_embedded_simulator(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with asyncio.timeout(LIMIT), Bridge(KRAKEN_ONLY, simulate="auto") as bridge:
        assert set(bridge.connectors) == {"kraken"} and bridge.simulated == {"kraken"}
        assert bridge.config.kraken.rest_url.startswith("http://127.0.0.1:")
        health = bridge.health()["kraken"]
        assert health.simulated and not health.credentials  # the demo account is not the user's
        async for event in bridge.subscribe("kraken", "book", "BTC/USD", depth=10):
            if isinstance(event, BookSnapshot):
                break
        async for event in bridge.subscribe("kraken", "balances"):
            if isinstance(event, BalanceSnapshot):
                assert event.balances  # the simulator's demo account
                break
    assert len(simulator_warnings(caplog)) == 1  # one WARNING per simulated venue, at start


async def test_without_simulate_the_bridge_never_starts_a_simulator(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with Bridge(Config()) as bridge:  # nothing configured: Kraken's public data, Primary not run
        assert set(bridge.connectors) == {"kraken"} and bridge.simulated == frozenset()
        assert bridge.config.kraken.rest_url == KRAKEN_REST_URL
        assert not bridge.health()["kraken"].simulated
    assert simulator_warnings(caplog) == []


async def test_simulate_auto_leaves_a_venue_with_credentials_real() -> None:
    config = dataclasses.replace(
        KRAKEN_ONLY,
        kraken=dataclasses.replace(KRAKEN_ONLY.kraken, api_key="k", api_secret=Secret("c2VjcmV0")),
    )
    async with Bridge(config, simulate="auto") as bridge:
        assert bridge.simulated == frozenset() and bridge.config.kraken.rest_url == KRAKEN_REST_URL


async def test_a_venue_left_out_gets_no_connector_and_no_data() -> None:
    async with asyncio.timeout(LIMIT), Bridge(KRAKEN_ONLY, simulate=True) as bridge:
        with pytest.raises(UnknownVenue) as info:
            bridge.balances("primary")
        assert "kraken" in (info.value.remedy or "")


async def test_a_chosen_venue_with_nothing_configured_and_no_simulator_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        async with Bridge(Config(server=ServerConfig(venues=("primary",)))):
            pass  # pragma: no cover
    assert "primary" in info.value.message and "simulate" in (info.value.remedy or "")


def test_simulate_takes_three_values_only() -> None:
    with pytest.raises(ConfigError):
        Bridge(Config(), simulate="yes")  # type: ignore[arg-type]


async def test_serve_with_venue_kraken_starts_no_primary_simulator(caplog: pytest.LogCaptureFixture) -> None:
    # What `serve --venue kraken` runs (cli/serve.py: venue_config over cfg.venues, then the Bridge).
    caplog.set_level(logging.INFO)
    cfg = load_config(env={}, overrides={"venues": ["kraken"]})
    async with (
        asyncio.timeout(LIMIT),
        venue_config(cfg, use_sim=None, console=Console(stderr=True), venues=cfg.venues) as run_cfg,
        Bridge(run_cfg) as bridge,
    ):
        assert run_cfg.primary is None and run_cfg.simulated == {"kraken"}
        assert set(bridge.connectors) == {"kraken"}
        assert run_cfg.journal_path is None  # a simulator's fills are not journaled on disk
    warnings = simulator_warnings(caplog)
    assert len(warnings) == 1 and "kraken" in warnings[0].getMessage()
    # One record per simulator started (sim/server.py: "<venue> simulator listening on …").
    started = [
        r.args[0]
        for r in caplog.records
        if r.name == "brokerbridge.sim.server" and "listening" in r.msg and isinstance(r.args, tuple)
    ]
    assert started == ["kraken"]


async def test_api_venues_and_health_mark_the_simulated_venue() -> None:
    async with (
        asyncio.timeout(LIMIT),
        Bridge(KRAKEN_ONLY, simulate="auto") as bridge,
        BridgeServer(
            bridge, host="127.0.0.1", port=0, settings=ServerSettings.from_config(ServerConfig())
        ) as server,
        httpx.AsyncClient(base_url=server.http_url, timeout=LIMIT) as http,
    ):
        venues = (await http.get("/api/venues")).json()["venues"]
        assert [(v["venue"], v["simulated"], v["credentials"]) for v in venues] == [("kraken", True, False)]
        health = (await http.get("/api/health")).json()["venues"]
        assert set(health) == {"kraken"}
        assert health["kraken"]["simulated"] is True and health["kraken"]["credentials"] is False
