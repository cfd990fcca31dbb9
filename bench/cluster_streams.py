"""Issue 21: events from a holder to an edge through Redis Streams, against the in-process fan-out,
in one run; Redis commands and Redis CPU per event; the publisher's batching choice.

Redis: Debian's `redis-server` on a free loopback port (tests/redis_server.py), AOF with
`appendfsync always` — the setting docs/cluster.md asks for (the journal's no-lost-fill promise).

Through Redis: `EventPublisher` (fenced, one Lua call per loop turn's batch) → redis-server →
`StreamReader` (XREAD BLOCK over the followed streams, its own connection) → the edge's `FanOut`
→ a listener. Baseline: the same events published into a `FanOut` → the same listener, in
process (what one bridge does). Publisher and reader are tasks of this process (two Redis
connections); Redis is a process of its own, as in production.

- Latency (added by the path): listener receive wall time − the event's `ts` (stamped at publish),
  every event, paced at `RATE` msg/s round-robin over `TOPICS` ticker streams.
- Delivered msg/s: a burst of `BURST` events published 500 per loop turn as fast as the loop goes,
  until the listener has them all.
- Redis commands per event: `INFO commandstats` calls delta over the burst (publish + one reader).
- Redis CPU per event (`INFO cpu` user+sys delta): written (no reader), and per extra reader
  (`READERS` edges following every stream) — the figures of the capacity model in bench/README.md.
- Batching choice: the same burst written by a pipeline of one fenced script per event (3 commands
  per event) against the publisher's one script per batch.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import redis.asyncio
from tests.redis_server import RedisServer

from bench.common import Report, percentile
from brokerbridge.core.clock import SystemClock
from brokerbridge.core.errors import VenueError
from brokerbridge.core.events import (
    AnyEvent,
    BookSnapshot,
    Channel,
    StreamState,
    StreamStatus,
    Subscription,
    Ticker,
    encode_event,
)
from brokerbridge.io.cluster.codec import Entry
from brokerbridge.io.cluster.fencing import fenced_script
from brokerbridge.io.cluster.keys import ClusterKeys
from brokerbridge.io.cluster.link import open_redis
from brokerbridge.io.cluster.publisher import EventPublisher
from brokerbridge.io.cluster.reader import StreamReader
from brokerbridge.services.fanout import FanOut

V = "kraken"
TOKEN = "bench 1"
KEYS = ClusterKeys()
TOPICS = 10  # ticker streams, round-robin
READERS = 4  # extra edges for the per-reader Redis CPU
SUBS = [Subscription(venue=V, channel=Channel.TICKER, symbol=f"S{i}/USD") for i in range(TOPICS)]
ONE_BY_ONE = """
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[3], 'ep', ARGV[4], 'n', ARGV[5])
"""


class _Upstream:
    """The edge fan-out's upstream: nothing to open (the streams come from Redis)."""

    def open(self, sub: Subscription) -> None:
        pass

    def close(self, sub: Subscription) -> None:
        pass

    def status_of(self, sub: Subscription) -> StreamStatus:
        return StreamStatus(venue=V, ts=time.time(), stream=sub.describe(), state=StreamState.LIVE)

    def current_state(self, sub: Subscription) -> list[AnyEvent]:
        return [self.status_of(sub)]

    def book_snapshot(self, sub: Subscription) -> BookSnapshot | None:
        return None


class Sink:
    """A FanOut with a listener on every topic: latencies (ms) and a count of tickers received."""

    def __init__(self) -> None:
        self.fanout = FanOut(_Upstream(), clock=SystemClock(), queue_size=1000, grace_s=0.0)
        self.latencies: list[float] = []
        self.received = 0
        self.record = True
        for sub in SUBS:
            self.fanout.listen(sub, self._on_event, self._on_refused)

    def _on_event(self, event: AnyEvent) -> None:
        if isinstance(event, Ticker):
            self.received += 1
            if self.record:
                self.latencies.append((time.time() - event.ts) * 1000)

    def _on_refused(self, error: VenueError) -> None:
        raise error


def _ticker(seq: int) -> Ticker:
    price = Decimal(60_000 + seq % 1000) / 10
    return Ticker(
        venue=V, ts=time.time(), symbol=SUBS[seq % TOPICS].symbol or "", bid=price, bid_qty=Decimal("0.5"),
        ask=price + Decimal("0.1"), ask_qty=Decimal("0.25"), last=price,
    )  # fmt: skip


async def _paced(publish: Callable[[Ticker], None], rate: int, seconds: float) -> int:
    """Publish at `rate` msg/s for `seconds` (perf_counter pacing, 1 ms sleeps; late: a burst)."""
    start = time.perf_counter()
    sent = 0
    while (elapsed := time.perf_counter() - start) < seconds:
        due = int(elapsed * rate)
        while sent < due:
            publish(_ticker(sent))
            sent += 1
        await asyncio.sleep(0.001)
    return sent


async def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60.0
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("the events did not all arrive within 60 s")
        await asyncio.sleep(0.001)


async def _burst(publish: Callable[[Ticker], None], count: int, done: Callable[[], bool]) -> float:
    """Seconds from the first publish until `done()`: `count` events, 500 per loop turn."""
    start = time.perf_counter()
    for first in range(0, count, 500):
        for seq in range(first, min(count, first + 500)):
            publish(_ticker(seq))
        await asyncio.sleep(0)
    await _until(done)
    return time.perf_counter() - start


async def _stats(client: redis.asyncio.Redis) -> tuple[dict[str, int], float]:
    commands = await client.info("commandstats")
    cpu = await client.info("cpu")
    calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in commands.items()}
    return calls, float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


async def _in_process(report: Report, rate: int, seconds: float, burst: int) -> None:
    sink = Sink()
    await _paced(sink.fanout.publish, rate, seconds)
    report.add("in-process p50", percentile(sink.latencies, 0.5), "ms")
    report.add("in-process p99", percentile(sink.latencies, 0.99), "ms")
    sink.record, sink.received = False, 0
    elapsed = await _burst(sink.fanout.publish, burst, lambda: sink.received >= burst)
    report.add("in-process delivered/s", burst / elapsed, "msg/s")


class Edge:
    """A StreamReader following every topic, feeding a Sink (one edge)."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.sink = Sink()
        self.reader = StreamReader(
            client, KEYS, V, on_entry=self._on_entry, on_gap=self._on_gap,
            on_down=self._on_down, on_up=lambda: None, clock=SystemClock(),
        )  # fmt: skip
        self.gaps = 0

    def _on_entry(self, topic: str, entry_id: str, entry: Entry) -> None:
        self.sink.fanout.publish(entry.event)

    def _on_gap(self, topic: str, reason: str) -> None:
        self.gaps += 1

    def _on_down(self, reason: str) -> None:
        raise RuntimeError(f"Redis went away during the benchmark: {reason}")

    async def follow(self) -> None:
        for sub in SUBS:
            self.reader.add(sub.describe(), await self.reader.tail(sub.describe()))


async def _paced_through(
    report: Report,
    label: str,
    stats: redis.asyncio.Redis,
    publisher: EventPublisher,
    edge: Edge,
    rate: int,
    seconds: float,
) -> None:
    """Latency at `rate` msg/s, and Redis commands per event at that rate (small batches)."""
    before, _ = await _stats(stats)
    await _paced(publisher.publish, rate, seconds)
    await publisher.flush()
    sent = publisher.written
    await _until(lambda: edge.sink.received >= sent)
    after, _ = await _stats(stats)
    calls = _delta(after, before)
    calls.pop("info", None)
    report.add(f"{label} p50", percentile(edge.sink.latencies, 0.5), "ms")
    report.add(f"{label} p99", percentile(edge.sink.latencies, 0.99), "ms")
    report.add(f"{label} batches per event (paced)", publisher.batches / max(1, sent), "")
    report.add(f"{label} commands per event (paced)", sum(calls.values()) / max(1, sent), "")


async def _paced_only(report: Report, url: str, rate: int, seconds: float, label: str) -> None:
    writer, stats, reading = (open_redis(url, name=f"bench-{n}") for n in ("holder", "stats", "edge"))
    await stats.set(KEYS.lease(V), TOKEN)
    publisher = EventPublisher(writer, KEYS, V, token=TOKEN, maxlen=100_000, on_fenced=print)
    edge = Edge(reading)
    await edge.follow()
    task = asyncio.create_task(edge.reader.run())
    try:
        await _paced_through(report, label, stats, publisher, edge, rate, seconds)
    finally:
        await _stop([task])
        await publisher.aclose()
        for client in (writer, stats, reading):
            await client.aclose()


async def _through_redis(
    report: Report, url: str, rate: int, seconds: float, burst: int, smoke: bool
) -> None:
    writer, stats = open_redis(url, name="bench-holder"), open_redis(url, name="bench-stats")
    readers = [open_redis(url, timeout=5.0, name=f"bench-edge-{i}") for i in range(1 + READERS)]
    await stats.set(KEYS.lease(V), TOKEN)
    fenced: list[str] = []
    publisher = EventPublisher(writer, KEYS, V, token=TOKEN, maxlen=100_000, on_fenced=fenced.append)
    edges = [Edge(client) for client in readers]
    tasks: list[asyncio.Task[None]] = []
    try:
        edge = edges[0]
        await edge.follow()
        tasks.append(asyncio.create_task(edge.reader.run()))
        await _paced_through(report, "redis", stats, publisher, edge, rate, seconds)

        # Burst with one edge reading: throughput and commands per event.
        edge.sink.record, edge.sink.received = False, 0
        before, cpu0 = await _stats(stats)
        elapsed = await _burst(publisher.publish, burst, lambda: edge.sink.received >= burst)
        after, cpu1 = await _stats(stats)
        calls = _delta(after, before)
        calls.pop("info", None)
        report.add("redis delivered/s", burst / elapsed, "msg/s")
        report.add("redis commands per event", sum(calls.values()) / burst, "")
        for name in ("xadd", "evalsha", "get", "xread"):
            report.add(f"  {name} per event", calls.get(name, 0) / burst, "")
        report.add("redis CPU per event (written + 1 edge)", (cpu1 - cpu0) / burst * 1e6, "µs")

        # Redis CPU: written with no edge reading, then with READERS more edges.
        await _stop(tasks)
        _, cpu0 = await _stats(stats)
        await _burst(publisher.publish, burst, lambda: publisher.pending == 0)
        await publisher.flush()
        _, cpu1 = await _stats(stats)
        written_cpu = (cpu1 - cpu0) / burst
        report.add("redis CPU per event written", written_cpu * 1e6, "µs")
        extra = edges[1:]
        for other in extra:
            await other.follow()
            tasks.append(asyncio.create_task(other.reader.run()))
        _, cpu0 = await _stats(stats)
        elapsed = await _burst(publisher.publish, burst, lambda: all(e.sink.received >= burst for e in extra))
        _, cpu1 = await _stats(stats)
        report.add(f"redis delivered/s to {READERS} edges (each)", burst / elapsed, "msg/s")
        per_reader = ((cpu1 - cpu0) / burst - written_cpu) / READERS
        report.add("redis CPU per event per edge read", per_reader * 1e6, "µs")
        await _stop(tasks)
        report.add("gaps", sum(e.gaps for e in edges), "")

        # The batching choice: a pipeline of one fenced script per event.
        script = fenced_script(writer, ONE_BY_ONE)
        before, _ = await _stats(stats)
        start = time.perf_counter()
        for first in range(0, burst, 500):
            async with writer.pipeline(transaction=False) as pipe:
                for seq in range(first, min(burst, first + 500)):
                    event = _ticker(seq)
                    args: list[Any] = [TOKEN, 100_000, encode_event(event), 1, "bench"]
                    await script.script(
                        keys=[KEYS.lease(V), KEYS.events(V, SUBS[seq % TOPICS].describe())],
                        args=args,
                        client=pipe,
                    )
                await pipe.execute()
        one_by_one = time.perf_counter() - start
        after, _ = await _stats(stats)
        calls = _delta(after, before)
        calls.pop("info", None)
        report.add("per-event scripts written/s", burst / one_by_one, "msg/s")
        report.add("per-event scripts commands per event", sum(calls.values()) / burst, "")
        start = time.perf_counter()
        await _burst(publisher.publish, burst, lambda: publisher.pending == 0)
        await publisher.flush()
        report.add("batch script written/s", burst / (time.perf_counter() - start), "msg/s")
        if fenced:
            report.note(f"the publisher was fenced: {fenced[0]}")
    finally:
        await _stop(tasks)
        await publisher.aclose()
        for client in (writer, stats, *readers):
            await client.aclose()


async def _stop(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    tasks.clear()


async def _run(smoke: bool) -> Report:
    rate, seconds, burst = (500, 0.3, 500) if smoke else (1000, 5.0, 20_000)
    report = Report("cluster_streams")
    await _in_process(report, rate, seconds, burst)
    with tempfile.TemporaryDirectory() as directory, RedisServer(Path(directory)) as server:
        await _through_redis(report, server.url, rate, seconds, burst, smoke)
    if not smoke:  # what the fsync of every write costs the latency
        with tempfile.TemporaryDirectory() as directory:
            with RedisServer(Path(directory), appendfsync="everysec") as server:
                await _paced_only(report, server.url, rate, seconds, "redis everysec")
            with RedisServer(Path(directory) / "none", appendonly=False) as server:
                await _paced_only(report, server.url, rate, seconds, "redis no AOF")
    report.ratio("p99 (redis / in-process)", "redis p99", "in-process p99")
    report.ratio("delivered/s (redis / in-process)", "redis delivered/s", "in-process delivered/s")
    report.note(f"{rate} msg/s paced over {TOPICS} ticker streams for {seconds} s; bursts of {burst}")
    report.note("redis-server with appendonly yes, appendfsync always; publisher, readers in this process")
    return report


def run(smoke: bool) -> list[Report]:
    return [asyncio.run(_run(smoke))]
