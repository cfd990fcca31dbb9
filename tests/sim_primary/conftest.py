"""In-process Primary simulator on a real loopback port, driven by a FakeClock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from primary_helpers import login

from brokerbridge.core.clock import FakeClock
from brokerbridge.sim.primary import PrimarySimulator


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_000.0, wall_start=1_767_225_600.0)  # 2025-12-31 21:00 in Buenos Aires


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[PrimarySimulator]:
    async with PrimarySimulator(port=0, seed=7, clock=clock, tick_s=0.25) as simulator:
        yield simulator


@pytest.fixture
async def http(sim: PrimarySimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.endpoints.rest, timeout=10) as client:
        yield client


@pytest.fixture
async def token(sim: PrimarySimulator, http: httpx.AsyncClient) -> str:
    return await login(http, sim)


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}
