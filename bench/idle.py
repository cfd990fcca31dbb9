"""An idle `serve` holds its memory: `brokerbridge serve` with no config (both embedded simulators,
their markets stepping all the time) and no client, for N minutes (`python -m bench --only idle
[--minutes 60]`; on request only, like soak).

The server runs in a process of its own, spawned as a user would (no config, no credentials);
one `GET /api/health` tells it is up, then nothing talks to it. Its RSS is sampled every 10 s (no
forced garbage collection: what the process really holds). The first 5 minutes are warm-up
(allocator arenas, the simulators' books and first candles, uvicorn's buffers); growth is measured
from there to the end, the slope is a least-squares fit over the same samples. Baseline: the RSS
at the end of the warm-up, in the same run. Also shown: the CPU the idle process used (the
simulators' markets step on their own clocks whether anyone watches or not).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time

import httpx
import psutil

from bench.common import REPO, Report, add_rss_growth
from bench.startup import _clean_env, _free_port

SAMPLE_S = 10.0
WARM_UP_S = 300.0
MINUTES = 60.0  # the default run


async def _wait_until_up(port: int, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    async with httpx.AsyncClient(timeout=5.0) as http:
        while True:
            try:
                if (await http.get(f"http://127.0.0.1:{port}/api/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve did not answer /api/health within {limit:g} s")
            await asyncio.sleep(0.2)


async def _run(minutes: float, sample_s: float, warm_up_s: float) -> Report:
    report = Report("idle")
    seconds = minutes * 60
    port = _free_port()
    state = tempfile.TemporaryDirectory(prefix="bench-idle-")  # a fresh machine's: no journal yet
    env = {**_clean_env(), "XDG_STATE_HOME": state.name}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "brokerbridge.cli.main", "serve", "--port", str(port), "--log-level", "WARNING",
        cwd=REPO, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await _wait_until_up(port)
        server = psutil.Process(proc.pid)
        start = time.monotonic()
        cpu_start = sum(server.cpu_times()[:2])
        samples: list[tuple[float, float]] = [(0.0, server.memory_info().rss / 2**20)]
        while (elapsed := time.monotonic() - start) < seconds:
            await asyncio.sleep(min(sample_s, seconds - elapsed))
            samples.append((time.monotonic() - start, server.memory_info().rss / 2**20))
        took = time.monotonic() - start
        cpu = sum(server.cpu_times()[:2]) - cpu_start
    finally:
        proc.terminate()
        await proc.wait()
        state.cleanup()
    report.add("minutes", took / 60)
    report.add("rss at start MB", samples[0][1], "MB")
    add_rss_growth(report, samples, warm_up_s, 20)
    report.add("cpu of one core %", 100 * cpu / took, "%")
    report.note(
        f"serve with no config (both simulators), no client, {took / 60:.3g} min; RSS every {sample_s:g} s; "
        f"the RSS after {warm_up_s / 60:g} min of warm-up is the baseline"
    )
    return report


def run(smoke: bool, minutes: float | None = None) -> list[Report]:
    if smoke:  # proves it runs: 10 s, 3 of them warm-up (CI's time is short)
        return [asyncio.run(_run(1 / 6, 1.0, 3.0))]
    chosen = MINUTES if minutes is None else minutes
    return [asyncio.run(_run(chosen, SAMPLE_S, min(WARM_UP_S, chosen * 60 / 3)))]
