"""Issue 21 end to end: venue → holder `serve --cluster` → Redis → edge `serve --cluster` → clients,
against venue → one `serve` → clients, in one run, on the same venue events.

Set-up, each a process of its own as a deployment runs them: the Kraken simulator (`brokerbridge
sim kraken --tick-ms TICK_MS`: its market steps every 2 ms instead of 10 — the books move on every
step, ≈ 1,200 depth-10 updates/s over its 5 pairs when it has a core to itself) and the Primary
simulator (`--no-relogin-invalidates`: the single process and the holder log in with the same demo
user, which on the real venue would be two users); Debian's redis-server (tests/redis_server.py,
AOF); the **single process** (`serve`, not clustered, its own SQLite journal); the **cluster**: one
holder (`serve --cluster`, role holder) and two edges (`serve --cluster`, role edge), every node
pointed at the same simulators.

Clients (bench/fanout_clients.py, picows on uvloop, `PER_PROCESS` sockets per process): `CLIENTS`
on the single process and `CLIENTS` on the first edge, at the same time, each subscribed to the
same streams — Kraken's 5 books (depth 10), tickers and trades, Primary's tickers and trades of
`PRIMARY_SYMBOLS` BYMA stocks (one batch `subscribe` per venue and channel). The bridge asks
Kraken for tickers on trades (Kraken's default), so the books carry the rate. After `SETTLE_S`
they count for `SECONDS`.

- **Delivered msg/s** per path: market events received by all its clients.
- **Latency**, venue → client: receive wall time − the event's `ts` (the venue's own stamp: Kraken's
  `timestamp`, Primary's `Md` timestamp), every `SAMPLE`-th event per client.
- **Added latency of holder → Redis → edge on the SAME events**: one probe connection per path
  records every event it receives; events are paired by their content (the event JSON without its
  `ts`: symbol, levels, checksum, prices, trade id… — Kraken stamps a frame when it builds it for
  each session, microseconds apart, so the stamp is not part of the key); for each pair, the
  edge's latency minus the single process's: p50/p99 of that difference.
- **Redis commands per event**: `INFO commandstats` calls over the counting window (the bench's own
  INFO left out) ÷ the events the holder published in it (the event streams' `entries-added`); and
  Redis's CPU (`INFO cpu`) per event. Each process's CPU (psutil) over the window, less its idle
  share (measured once before any client, `IDLE_S`), per event and per delivered message: the
  per-edge figures of the capacity model in bench/README.md.

Windows, on the same running cluster (fresh clients each): `appendfsync always` — what
docs/cluster.md asks of the cluster's one Redis (the journal's fsync promise; events share it);
then `everysec` (`CONFIG SET`); then `everysec` with one more client on the second edge, which then
reads every stream as well: Redis's cost of one more edge. The single process takes the same
clients in every window: each window's ratios are against its own baseline.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from tests.redis_server import RedisServer

from bench.common import SEED, Report, percentile
from bench.fanout import _results, _spawn
from bench.primary_stack import Simulator, byma_symbols, free_port, start_serve, stop_process
from brokerbridge.io.cluster.keys import ClusterKeys
from brokerbridge.io.cluster.link import open_redis

KEY = "cluster-nodes-bench-key-0123456789"
KRAKEN_SYMBOLS = ["BTC/USD", "ETH/USD", "SOL/USD", "XRP/USD", "ETH/BTC"]  # every pair the simulator lists
PRIMARY_SYMBOLS = 20  # the first BYMA stocks of the Primary simulator's catalogue
TICK_MS = 2.0  # the Kraken simulator's market step (default 10 ms); books move on every step
CLIENTS = 100  # per path
PER_PROCESS = 100  # sockets per client process
SECONDS = 15.0  # counted per window
SETTLE_S = 4.0  # after the clients connected: subscriptions reach the holder, first snapshots
IDLE_S = 3.0  # every process's CPU measured with nobody subscribed, before the first window
SAMPLE = 4  # every client times every SAMPLE-th event
MARK = '"symbol":"'  # market events (books, tickers, trades) carry one; statuses, gaps, acks do not
LEASE_WAIT_S = 60.0
KEYS = ClusterKeys()


def _subscriptions(primary: Sequence[str]) -> list[str]:
    batches: list[tuple[str, str, Sequence[str]]] = [
        ("kraken", channel, KRAKEN_SYMBOLS) for channel in ("book", "ticker", "trades")
    ]
    if primary:
        batches += [("primary", "ticker", primary), ("primary", "trades", primary)]
    return [
        json.dumps({"op": "subscribe", "id": f"{v}-{c}", "venue": v, "channel": c, "symbols": list(s)})
        for v, c, s in batches
    ]


class Node:
    """`brokerbridge serve` on a config of its own pointed at the simulators: the single process,
    or (`cluster` = a Redis URL) a cluster node of `role`."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        sims: dict[str, dict[str, str]],
        *,
        cluster: str | None = None,
        role: str = "holder",
    ) -> None:
        self.name = name
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self.cluster = cluster
        self.config = self.dir / "brokerbridge.toml"
        self.log = self.dir / "serve.log"
        text = f'log_format = "plain"\njournal_path = "{self.dir / "journal.sqlite3"}"\n'
        k = sims["kraken"]
        text += (
            f'[kraken]\napi_key = "{k["api_key"]}"\napi_secret = "{k["api_secret"]}"\n'
            f'rest_url = "{k["rest"]}"\nws_url = "{k["ws_public"]}"\nws_auth_url = "{k["ws_private"]}"\n'
        )
        if "primary" in sims:
            p = sims["primary"]
            text += (
                f'[primary]\nenvironment = "{p["rest"]}"\nws_url = "{p["ws"]}"\nuser = "{p["user"]}"\n'
                f'password = "{p["password"]}"\naccount = "{p["account"]}"\nmarket_hours = "always"\n'
                f'instruments_cache_dir = "{self.dir / "cache"}"\n'
            )
        venues = ", ".join(f'"{v}"' for v in sims)
        # One key for every client: the per-key connection cap (default 20) raised as a deployment
        # serving this many sockets from one credential would.
        text += (
            f'[server]\nstate_dir = "{self.dir / "state"}"\nvenues = [{venues}]\n'
            "max_connections_per_key = 5000\n"
            f'[server.keys.bench]\nkey = "{KEY}"\nscopes = ["market", "account"]\n'
        )
        if cluster:
            text += f'[cluster]\nnode_id = "{name}"\nrole = "{role}"\n'
        self.config.write_text(text, encoding="utf-8")
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        args = ["--cluster", self.cluster] if self.cluster else []
        self.process = await start_serve(self.config, self.port, self.log, KEY, args)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def error_lines(self) -> list[str]:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [line.strip() for line in text.splitlines() if " ERROR " in line]

    async def stop(self) -> None:
        await stop_process(self.process, signal.SIGTERM)


class RedisProbe:
    """The bench's own look at Redis: command calls, CPU, events written to the event streams."""

    def __init__(self, url: str, venues: Sequence[str]) -> None:
        self.client = open_redis(url, timeout=5.0, name="bench-stats")
        self.venues = venues

    async def events_added(self) -> tuple[int, int]:
        """Entries ever added to the venues' event streams, and how many streams there are."""
        total = streams = 0
        for venue in self.venues:
            async for key in self.client.scan_iter(match=KEYS.events(venue, "*"), count=1000):
                info = await self.client.xinfo_stream(key)
                total += int(info["entries-added"])
                streams += 1
        return total, streams

    async def snapshot(self) -> tuple[dict[str, tuple[int, int]], float]:
        """(calls, µs spent) per command — a script's inner commands counted as well — and
        Redis's CPU seconds."""
        commands = await self.client.info("commandstats")
        cpu = await self.client.info("cpu")
        calls = {
            name.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"])) for name, v in commands.items()
        }
        return calls, float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])

    async def held(self) -> bool:
        return all([await self.client.get(KEYS.lease(v)) is not None for v in self.venues])

    async def aclose(self) -> None:
        await self.client.aclose()


def _paired(single: list[list[Any]], edge: list[list[Any]]) -> list[tuple[float, float]]:
    """(single latency, edge latency) in s of each event both probes received once."""

    def once(probe: list[list[Any]]) -> dict[str, tuple[float, float]]:
        seen: dict[str, tuple[float, float] | None] = {}
        for key, stamp, received in probe:
            seen[key] = None if key in seen else (stamp, received)
        return {k: v for k, v in seen.items() if v is not None}

    a, b = once(single), once(edge)
    return [(a[k][1] - a[k][0], b[k][1] - b[k][0]) for k in a.keys() & b.keys()]


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


@dataclass
class Stack:
    """Everything one run starts: the simulators, the single process, the cluster's nodes, the
    bench's connection to Redis, and what every client subscribes to."""

    sims: list[Simulator]
    single: Node
    holder: Node
    edge: Node
    reader: Node | None  # a second edge, one client in the last window: one more edge's Redis cost
    redis: RedisProbe
    subscriptions: list[str]

    def pids(self) -> dict[str, int]:
        """Whose CPU each window reports: the nodes and the simulators."""
        nodes = {node.name: node.pid for node in (self.single, self.holder, self.edge, self.reader) if node}
        return nodes | {f"{sim.venue} simulator": sim.pid for sim in self.sims}


@dataclass
class Usage:
    """What each process used over `took` seconds: its share of a core (Redis's as "redis"), and
    Redis's commands run, as (calls, µs spent) per command."""

    took: float
    share: dict[str, float]
    calls: dict[str, tuple[int, int]]


async def _measure(stack: Stack, seconds: float) -> Usage:
    pids = stack.pids()
    cpu = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    calls, redis_cpu = await stack.redis.snapshot()
    began = time.perf_counter()
    await asyncio.sleep(seconds)
    calls_after, redis_cpu_after = await stack.redis.snapshot()
    took = time.perf_counter() - began
    share = {name: (_cpu_seconds(pid) - cpu[name]) / took for name, pid in pids.items()}
    share["redis"] = (redis_cpu_after - redis_cpu) / took
    delta = {
        k: (n - calls.get(k, (0, 0))[0], us - calls.get(k, (0, 0))[1])
        for k, (n, us) in calls_after.items()
        if n - calls.get(k, (0, 0))[0]
    }
    delta.pop("info", None)  # the bench's own
    return Usage(took, share, delta)


async def _idle(report: Report, stack: Stack, seconds: float) -> dict[str, float]:
    """Each process's CPU share (and Redis's, as "redis") with the cluster up and nobody subscribed:
    heartbeats, lease renewals, account sessions, the simulators' markets. Taken off the windows'
    figures, so that "per event" is the events' own cost. Measured once, before any client: after a
    window the streams close only after the grace period, and the idle would not be idle."""
    usage = await _measure(stack, seconds)
    for name, used in usage.share.items():
        report.add(f"idle {name} CPU", 100 * used, "% core")
    return usage.share


async def _window(
    report: Report,
    label: str,
    stack: Stack,
    clients: int,
    seconds: float,
    settle: float,
    idle: dict[str, float],
    second_edge: bool = False,
) -> None:
    """Both paths' clients at once; the figures of one counting window, prefixed `label`. With
    `second_edge`, one more client on the second edge, so that it reads every stream too."""
    args = ["--mark", MARK, "--stamp", "ts", "--sample", str(SAMPLE), "--probe"]
    args += ["--seconds", str(seconds), "--settle", str(settle), "--header", f"Authorization:Bearer {KEY}"]
    for text in stack.subscriptions:
        args += ["--subscribe", text]
    paths = {"single": stack.single, "edge": stack.edge}
    groups = await asyncio.gather(
        *(_spawn(node.ws_url, clients, *args, per_process=PER_PROCESS) for node in paths.values())
    )
    readers = [await _spawn(stack.reader.ws_url, 1, *args)] if second_edge and stack.reader else []
    await asyncio.sleep(settle)  # the clients count from about here (each after its own settle)
    added, _ = await stack.redis.events_added()
    usage = await _measure(stack, seconds)
    took, share, delta = usage.took, usage.share, usage.calls
    added_after, streams = await stack.redis.events_added()
    published = added_after - added
    results = dict(zip(paths, [await _results(group) for group in groups], strict=True))
    for spawned in readers:
        got = sum(r["messages"] for r in await _results(spawned))
        report.add(f"{label} reader (second edge, 1 client) delivered/s", got / seconds, "msg/s")

    delivered: dict[str, float] = {}
    for name, group in results.items():
        latencies = [lat for r in group for lat in r["latencies"]]
        delivered[name] = report.add(
            f"{label} {name} delivered/s", sum(r["messages"] for r in group) / seconds, "msg/s"
        )
        if latencies:
            report.add(f"{label} {name} p50", percentile(latencies, 0.5) * 1000, "ms")
            report.add(f"{label} {name} p99", percentile(latencies, 0.99) * 1000, "ms")
        else:
            report.note(f"{label} {name}: no event timed")
    edge_s, single_s = f"{label} edge delivered/s", f"{label} single delivered/s"
    report.ratio(f"{label} delivered/s (edge / single)", edge_s, single_s)
    if f"{label} edge p99" in report.figures and f"{label} single p99" in report.figures:
        report.ratio(f"{label} p99 (edge / single)", f"{label} edge p99", f"{label} single p99")

    pairs = _paired(*(next(r["probe"] for r in results[name] if "probe" in r) for name in paths))
    report.add(f"{label} events paired", len(pairs), "")
    if pairs:
        added_ms = [(e - s) * 1000 for s, e in pairs]
        report.add(f"{label} added latency p50 (paired)", percentile(added_ms, 0.5), "ms")
        report.add(f"{label} added latency p99 (paired)", percentile(added_ms, 0.99), "ms")
        for i, name in enumerate(paths):
            mine = [pair[i] * 1000 for pair in pairs]
            report.add(f"{label} paired {name} p50", percentile(mine, 0.5), "ms")
            report.add(f"{label} paired {name} p99", percentile(mine, 0.99), "ms")
    else:
        report.note(f"{label}: no event reached both probes — no added latency measured")

    report.add(f"{label} events published/s", published / took, "msg/s")
    report.add(f"{label} event streams (each edge's XREAD follows them all)", streams, "")
    redis_share = share.pop("redis")
    report.add(f"{label} redis CPU", 100 * redis_share, "% core")
    if published:
        report.add(f"{label} redis commands per event", sum(n for n, _ in delta.values()) / published, "")
        # A script's inner commands (the fence's GET, the XADDs) are counted apart and inside EVALSHA's time.
        for name, (count, usec) in sorted(delta.items(), key=lambda kv: -kv[1][0])[:6]:
            report.add(f"{label}   {name} per event", count / published, "")
            report.add(f"{label}   {name} µs per call", usec / count, "µs")
        rate = published / took
        report.add(f"{label} redis CPU per event", max(0.0, redis_share - idle["redis"]) / rate * 1e6, "µs")
        holder = max(0.0, share["holder"] - idle["holder"])
        report.add(f"{label} holder CPU per event published", holder / rate * 1e6, "µs")
        # Both paths deliver the same events to as many clients: the difference is their upstream
        # side — the edge reading and decoding Redis entries against the single process's venue
        # session (decode, book, checksum).
        edge_more = (share["edge"] - idle["edge"]) - (share["single"] - idle["single"])
        report.add(f"{label} edge CPU − single CPU per event", edge_more / rate * 1e6, "µs")
    else:
        report.note(f"{label}: the holder published nothing in the window — no per-event Redis figures")
    for name, used in share.items():
        report.add(f"{label} {name} CPU", 100 * used, "% core")
    for name in paths:  # the idle share taken off: what the events and their deliveries cost
        if delivered[name]:
            used = max(0.0, share[name] - idle[name])
            report.add(f"{label} {name} CPU per delivery", used / delivered[name] * 1e6, "µs")


async def _run(smoke: bool) -> Report:
    clients, seconds, settle, idle = (4, 1.0, 1.5, 0.5) if smoke else (CLIENTS, SECONDS, SETTLE_S, IDLE_S)
    tick = 10.0 if smoke else TICK_MS
    report = Report("cluster_nodes")
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bb-bench-cluster-") as tmp:
        workdir = Path(tmp)
        sims = [Simulator(workdir, SEED, venue="kraken", args=["--tick-ms", str(tick)])]
        primary = [] if smoke else byma_symbols(PRIMARY_SYMBOLS)
        if primary:  # the smoke run leaves Primary out: its catalogue and logins cost seconds
            sims.append(Simulator(workdir, SEED, relogin_invalidates=False))
        nodes: list[Node] = []
        with RedisServer(workdir / "redis", appendfsync="always") as server:
            probe = RedisProbe(server.url, [s.venue for s in sims])
            try:
                await asyncio.gather(*(sim.start() for sim in sims))
                ends = {sim.venue: sim.ends for sim in sims}
                single = Node(workdir, "single", ends)
                holder = Node(workdir, "holder", ends, cluster=server.url, role="holder")
                edge = Node(workdir, "edge", ends, cluster=server.url, role="edge")
                # The smoke run has no third window: no second edge to start.
                reader = None if smoke else Node(workdir, "reader", ends, cluster=server.url, role="edge")
                nodes = [node for node in (single, holder, edge, reader) if node]
                await asyncio.gather(*(node.start() for node in nodes))
                deadline = time.monotonic() + LEASE_WAIT_S
                while not await probe.held():  # polled: the lease is a key in Redis, no event to await
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"the holder held no lease within {LEASE_WAIT_S:.0f} s")
                    await asyncio.sleep(0.1)
                stack = Stack(sims, single, holder, edge, reader, probe, _subscriptions(primary))
                idle_share = await _idle(report, stack, idle)
                timing = (clients, seconds, settle, idle_share)
                await _window(report, "fsync always", stack, *timing)
                if not smoke:
                    await probe.client.config_set("appendfsync", "everysec")
                    await _window(report, "fsync everysec", stack, *timing)
                    await _window(report, "fsync everysec, 2 edges", stack, *timing, second_edge=True)
            finally:
                await asyncio.gather(*(node.stop() for node in nodes))
                await asyncio.gather(*(sim.stop() for sim in sims))
                await probe.aclose()
            for node in nodes:
                errors = node.error_lines()
                if errors:
                    report.note(f"{node.name}: {len(errors)} ERROR lines, first: {errors[0][:200]}")
    venues = "Kraken book depth 10, ticker, trades" + (
        f" + Primary ticker, trades of {PRIMARY_SYMBOLS} stocks" if primary else ""
    )
    report.note(
        f"{clients} clients per path; {venues}; Kraken simulator step {tick:g} ms; "
        f"{seconds:g} s counted after {settle:g} s; load average {load:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end"
    )
    windows = "always, then everysec (CONFIG SET), same cluster" if not smoke else "always"
    report.note(f"redis-server: appendonly yes, appendfsync {windows}")
    return report


def run(smoke: bool) -> list[Report]:
    return [asyncio.run(_run(smoke))]
