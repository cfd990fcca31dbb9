"""The idle benchmark accelerated: both simulators' exchanges (full catalogues, as `serve` embeds
them) stepped on a FakeClock for simulated hours (Kraken 13, Primary 2), with nobody reading. What
the real-time `idle` benchmark shows after an hour — does the history stop growing? — in under a
minute, for the default set and its smoke run.

Each exchange is stepped every `step_s` fake seconds (the market moves at most 5 s a step, so a
coarse step means fewer trades per simulated hour than at the servers' own ticks; the figures say
how many were recorded). The Python heap is measured with tracemalloc (exact, unlike an RSS that
moves with allocator arenas). Baseline: the heap after the first simulated hour (warm-up), in the
same run; the target is the real benchmark's, ≤ 20 MB of growth after warm-up, here over a span in
which the Kraken simulator's bounds fill (5,000 trades per pair, 721 one-minute candles) and the
Primary one's trade bound (its hourly candles grow by one an hour per instrument, up to 49).
"""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

from bench.common import Report
from brokerbridge.core.clock import FakeClock
from brokerbridge.sim.faults import KrakenFaults, PrimaryFaults
from brokerbridge.sim.kraken.exchange import KrakenExchange
from brokerbridge.sim.market import HistorySize, Market
from brokerbridge.sim.primary.exchange import PrimaryExchange

HOUR = 3_600.0
WARM_UP_H = 1.0


@dataclass
class Venue:
    name: str
    clock: FakeClock
    market: Market
    step: Callable[[], object]
    step_s: float
    hours: float


def _venues(kraken_h: float, primary_h: float) -> list[Venue]:
    kraken_clock, primary_clock = FakeClock(), FakeClock()
    kraken = KrakenExchange(clock=kraken_clock, faults=KrakenFaults())
    primary = PrimaryExchange(clock=primary_clock, faults=PrimaryFaults())
    return [
        Venue("kraken", kraken_clock, kraken.market, kraken.step, 5.0, kraken_h),
        # ≈ 360 instruments cost ≈ 10 ms a step (more under tracemalloc): coarse steps keep it short.
        Venue("primary", primary_clock, primary.market, primary.step, 60.0, primary_h),
    ]


async def _advance(venue: Venue, hours: float) -> None:
    for _ in range(round(hours * HOUR / venue.step_s)):
        await venue.clock.advance(venue.step_s, settle=0)
        venue.step()


def _warm_up_h(venue: Venue) -> float:
    return min(WARM_UP_H, venue.hours / 2)


def _heap_mb() -> float:
    gc.collect()
    return tracemalloc.get_traced_memory()[0] / 2**20


def _held(size: HistorySize) -> str:
    return f"{size.trades:,} trades, {size.candles:,} candles, {size.book_levels:,} book levels"


async def _run(kraken_h: float, primary_h: float) -> Report:
    report = Report("idle_sim")
    tracemalloc.start()
    try:
        started = time.process_time()
        venues = _venues(kraken_h, primary_h)
        for venue in venues:  # warm-up: every venue's first simulated hour (half of a smoke run)
            await _advance(venue, _warm_up_h(venue))
        warm = _heap_mb()
        at_warm = {venue.name: venue.market.history_size() for venue in venues}
        for venue in venues:
            await _advance(venue, venue.hours - _warm_up_h(venue))
        end = _heap_mb()
        took = time.process_time() - started
    finally:
        tracemalloc.stop()
    report.add("kraken simulated hours", kraken_h, "h")
    report.add("primary simulated hours", primary_h, "h")
    for venue in venues:
        size = venue.market.history_size()
        report.add(f"{venue.name} trades held", size.trades)
        report.add(f"{venue.name} candles held", size.candles)
        report.note(f"{venue.name}: after warm-up {_held(at_warm[venue.name])}; at the end {_held(size)}")
    report.add("heap after warm-up MB", warm, "MB")
    report.add("heap at end MB", end, "MB")
    report.add("heap growth after warm-up MB", end - warm, "MB")
    report.add("cpu s", took, "s")
    report.target("heap growth after warm-up MB", "<=", 20)
    report.note(
        "both exchanges on FakeClocks, nobody reading; Kraken stepped every 5 s, Primary every 60 s "
        f"(fake); warm-up {WARM_UP_H:g} simulated hour; heap by tracemalloc"
    )
    return report


def run(smoke: bool) -> list[Report]:
    if smoke:
        return [asyncio.run(_run(0.5, 0.2))]
    return [asyncio.run(_run(13.0, 2.0))]
