"""In-process Kraken simulator on a real loopback port, driven by a FakeClock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sim_helpers import Signer

from brokerbridge.core.clock import FakeClock
from brokerbridge.sim.kraken import KrakenSimulator


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_000.0, wall_start=1_767_225_600.0)


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[KrakenSimulator]:
    async with KrakenSimulator(port=0, seed=7, clock=clock) as simulator:
        yield simulator


@pytest.fixture
async def http(sim: KrakenSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.endpoints.rest, timeout=10) as client:
        yield client


@pytest.fixture
def signer(sim: KrakenSimulator, http: httpx.AsyncClient) -> Signer:
    return Signer(http, sim.endpoints.api_key, sim.endpoints.api_secret)
