"""Helpers for the doctor tests: run the CLI in a worker thread, drive fake time, write configs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from typer.testing import CliRunner

from brokerbridge.cli.main import app
from brokerbridge.core.clock import FakeClock
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.sim.primary import PrimarySimulator

T = TypeVar("T")


@dataclass
class Run:
    exit_code: int
    output: str

    def json(self) -> dict[str, Any]:
        return json.loads(self.output)

    def step(self, key: str) -> dict[str, Any]:
        return next(s for s in self.json()["steps"] if s["step"] == key)

    def statuses(self) -> dict[str, str]:
        return {s["step"]: s["status"] for s in self.json()["steps"]}


async def run_cli(*args: str) -> Run:
    """`brokerbridge …` in a worker thread; stdout only (the notes go to stderr)."""
    runner = CliRunner()
    result = await asyncio.to_thread(runner.invoke, app, list(args), catch_exceptions=False)
    return Run(result.exit_code, result.stdout)


async def doctor(*args: str) -> Run:
    return await run_cli("doctor", *args)


async def drive(clock: FakeClock, work: Awaitable[T], *, within: float = 60.0) -> T:
    """Await `work` while moving fake time in small steps (real loopback I/O gets its turns)."""
    task = asyncio.ensure_future(work)
    start = clock.monotonic()
    while not task.done():
        assert clock.monotonic() - start <= within, "not done within the fake time allowed"
        await clock.advance(0.05)
        await asyncio.sleep(0.002)
    return task.result()


def kraken_config(path: Path, sim: KrakenSimulator, key: str, secret: str, extra: str = "") -> Path:
    ep = sim.endpoints
    path.write_text(
        "# my Kraken set-up: keep this comment\n"
        "[kraken]\n"
        f'api_key = "{key}"\n'
        f'api_secret = "{secret}"  # from the key page\n'
        f'rest_url = "{ep.rest}"\n'
        f'ws_url = "{ep.ws_public}"\n'
        f'ws_auth_url = "{ep.ws_private}"\n' + extra,
        encoding="utf-8",
    )
    return path


def primary_config(
    path: Path, sim: PrimarySimulator, *, password: str | None = None, environment: str | None = None
) -> Path:
    ep = sim.endpoints
    path.write_text(
        "# Primary through my broker: keep this comment\n"
        "[primary]\n"
        f'environment = "{environment or ep.rest}"  # where the API lives\n'
        f'user = "{ep.user}"\n'
        f'password = "{password or ep.password}"\n'
        f'account = "{ep.account}"\n'
        'market_hours = "always"\n',
        encoding="utf-8",
    )
    return path
