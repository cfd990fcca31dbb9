"""Target 5: start-up — `brokerbridge serve` (embedded simulators, no config) spawned, to the first live
ticker event at a WebSocket client. Baseline in the same run: the floor of any Python entry point,
spawning the interpreter and importing the CLI (`python -c "import brokerbridge.cli.main"`)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import sys
import time

import websockets

from bench.common import REPO, Report

SUBSCRIBE = json.dumps(
    {"op": "subscribe", "id": "t", "venue": "kraken", "channel": "ticker", "symbol": "BTC/USD"}
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env() -> dict[str, str]:
    # No user config or credentials: serve must start its simulators, as on a fresh machine.
    return {k: v for k, v in os.environ.items() if not k.startswith("BROKERBRIDGE_")}


async def _first_tick(port: int, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while True:
        try:
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws", compression=None) as ws:
                await ws.send(SUBSCRIBE)
                while True:
                    body = json.loads(await asyncio.wait_for(ws.recv(), limit))
                    if body.get("type") == "event" and body["event"].get("kind") == "ticker":
                        return
        except (OSError, websockets.InvalidHandshake):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)


async def _serve_once() -> float:
    port = _free_port()
    start = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "brokerbridge.cli.main", "serve", "--port", str(port), "--log-level", "WARNING",
        cwd=REPO, env=_clean_env(), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await _first_tick(port)
        return time.monotonic() - start
    finally:
        proc.terminate()
        await proc.wait()


async def _import_once() -> float:
    start = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import brokerbridge.cli.main", cwd=REPO
    )
    await proc.wait()
    return time.monotonic() - start


async def _run(rounds: int) -> Report:
    report = Report("startup")
    serve = [await _serve_once() for _ in range(rounds)]
    floor = [await _import_once() for _ in range(rounds)]
    report.add("serve to first live tick (median)", statistics.median(serve), "s")
    report.add("serve to first live tick (max)", max(serve), "s")
    report.add("baseline interpreter + import (median)", statistics.median(floor), "s")
    report.ratio(
        "serve / baseline", "serve to first live tick (median)", "baseline interpreter + import (median)"
    )
    report.target("serve to first live tick (max)", "<=", 3)
    report.note(f"{rounds} cold starts; serve with no config starts both simulators in-process")
    return report


def run(smoke: bool) -> list[Report]:
    return [asyncio.run(_run(1 if smoke else 5))]
