"""`brokerbridge doctor` run as a user runs it — the Typer app through `CliRunner` — against
simulators served in-process on loopback (helpers in doctor_helpers.py).

The command calls `asyncio.run`, so it runs in a worker thread (its own event loop) while the
simulator keeps serving on the test's loop. Steps that wait for a feed are tested through the
in-process API with a `FakeClock` instead (`drive`), so a stall costs no real seconds.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.sim.primary import PrimarySimulator


@pytest.fixture(autouse=True)
def _no_user_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("BROKERBRIDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")


# One simulator per module (the Primary one takes seconds to build its catalogue); each test gets it
# with every fault switch back at its default.
@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def _kraken_server() -> AsyncIterator[KrakenSimulator]:
    async with KrakenSimulator(host="127.0.0.1", port=0, seed=3) as sim:
        yield sim


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def _primary_server() -> AsyncIterator[PrimarySimulator]:
    async with PrimarySimulator(host="127.0.0.1", port=0, seed=3, tick_s=0.05) as sim:
        yield sim


@pytest.fixture
def kraken_sim(_kraken_server: KrakenSimulator) -> Iterator[KrakenSimulator]:
    yield _kraken_server
    _kraken_server.faults.reset()


@pytest.fixture
def primary_sim(_primary_server: PrimarySimulator) -> Iterator[PrimarySimulator]:
    yield _primary_server
    _primary_server.faults.reset()
