"""Target 3, second half: no memory growth over a long run at full load (`python -m bench --only soak
[--minutes 10]`; not in the default set, which must stay under ten minutes).

The fan-out benchmark's set-up (bench/fanout.py: a `Bridge` on the Kraken simulator in its own
process, `BridgeServer`, 1,000 picows clients in 250-connection processes) with the upstream at
1,000 msg/s for the whole run. The server's RSS is sampled every 10 s (no forced garbage
collection: what the process really holds). The first minute is warm-up (allocator arenas, the
hub logs filling, the clients' connections settling); growth is measured from there to the end,
and the slope is a least-squares fit over the same samples. Baseline: the RSS at the end of the
warm-up, in the same run.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial

import psutil

from bench.common import Report, add_rss_growth, percentile
from bench.fanout import SUBSCRIBE, Server, _pace, _results, _spawn, _warm_up, bridge_server

SAMPLE_S = 10.0
WARM_UP_S = 60.0


def _publish(server: Server, offset: int, seq: int) -> None:
    server.publish(offset + seq)


async def _run(minutes: float, clients: int, rate: float) -> Report:
    report = Report("soak")
    seconds = minutes * 60
    warm_up = min(WARM_UP_S, seconds / 3)
    process = psutil.Process()
    async with bridge_server() as server:
        await _warm_up(server)
        procs = await _spawn(server.url, clients, "--subscribe", SUBSCRIBE, "--seconds", str(seconds + 2))
        samples: list[tuple[float, float]] = []
        sent = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            # Pace in slices so RSS can be read between them; seq numbers continue across slices.
            publish = partial(_publish, server, sent)
            published, _ = await _pace(publish, rate, min(SAMPLE_S, seconds - elapsed))
            sent += published
            samples.append((time.perf_counter() - start, process.memory_info().rss / 2**20))
        took = time.perf_counter() - start
        results = await _results(procs)
    latencies = [lat for r in results for lat in r["latencies"]]
    report.add("minutes", seconds / 60)
    report.add("published/s", sent / took)
    report.add("delivered/s", sum(r["messages"] for r in results) / took)
    report.add("p99 ms", percentile(latencies, 0.99) * 1000, "ms")
    add_rss_growth(report, samples, warm_up, 5)
    report.note(
        f"{clients} clients, upstream {rate:g} msg/s for {seconds / 60:g} min; RSS sampled every "
        f"{SAMPLE_S:g} s; warm-up {warm_up:g} s is the baseline"
    )
    return report


def run(smoke: bool, minutes: float | None = None) -> list[Report]:
    if smoke:
        return [asyncio.run(_run(0.25, 20, 100.0))]
    return [asyncio.run(_run(10.0 if minutes is None else minutes, 1000, 1000.0))]
