"""Targets 2 and 3: fan-out through the bridge server to real WebSocket clients on loopback, and the
memory each client costs — against a bare `websockets` broadcast server run in the same benchmark.

Server side (this process): a `Bridge` on the Kraken simulator (`brokerbridge sim kraken`, a process
of its own, as a venue is) and a `BridgeServer` on port 0. The upstream is driven by feeding
`Ticker` events straight into the Bridge's event path (`Bridge._on_event`, what a connector calls
for every venue event) at a paced rate; each carries its publish wall time in `ts` and `source=rest`
as a mark, so clients can tell them from the simulator's own ticks. Pacing is by
`time.perf_counter()` with 1 ms sleeps on the default asyncio loop (uvloop's `loop.time()` ticks in
whole milliseconds, so a pacer built on it can busy-spin); a late pacer catches up in a burst, as a
real upstream does.

Baseline: `websockets.asyncio.server` with `websockets.broadcast` of one pre-encoded text per event,
the same message shape, the same clients.

Client side: `bench.fanout_clients` processes (250 connections each, picows on uvloop). Added
latency = client receive wall time − publish wall time, of every 8th marked event per connection.
Delivered throughput = marked events received by all clients per second of publishing. Memory per
idle client = (server process RSS with N idle connections − RSS before) / N.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec
import psutil
import websockets
from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench.common import REPO, SEED, Report, percentile
from brokerbridge.bridge import Bridge
from brokerbridge.core.config import Config, KrakenConfig, ServerConfig
from brokerbridge.core.events import Source, Ticker, encode_event
from brokerbridge.core.secret import Secret
from brokerbridge.server import BridgeServer, ServerSettings

SUBSCRIBE = json.dumps(
    {"op": "subscribe", "id": "t", "venue": "kraken", "channel": "ticker", "symbol": "BTC/USD"}
)
PER_PROCESS = 250  # connections per client process


def _ticker(seq: int) -> Ticker:
    price = Decimal(60_000 + seq % 1000) / 10
    return Ticker(
        venue="kraken", ts=time.time(), symbol="BTC/USD", bid=price, bid_qty=Decimal("0.5"),
        ask=price + Decimal("0.1"), ask_qty=Decimal("0.25"), last=price, source=Source.REST,
    )  # fmt: skip


def rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


# ---------------------------------------------------------------- the two servers


@dataclass
class Server:
    url: str
    publish: Callable[[int], None]
    flushes: Callable[[], int] = lambda: 0  # the server's write rounds so far (ours: the Coalescer's)


@asynccontextmanager
async def simulator_process() -> AsyncIterator[dict[str, str]]:
    """The Kraken simulator in a process of its own, as a venue is: its market's work is not the
    server's. Yields its endpoints (the first line `brokerbridge sim` prints)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "brokerbridge.cli.main", "sim", "kraken", "--port", "0", "--seed", str(SEED),
        "--log-level", "WARNING", cwd=REPO, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        yield json.loads(line)
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


@asynccontextmanager
async def bridge_server() -> AsyncIterator[Server]:
    async with simulator_process() as ends:
        config = Config(
            kraken=KrakenConfig(
                rest_url=ends["rest"], ws_url=ends["ws_public"], ws_auth_url=ends["ws_private"],
                api_key=ends["api_key"], api_secret=Secret(ends["api_secret"]),
            ),
            journal_path=":memory:",
        )  # fmt: skip
        settings = ServerSettings.from_config(ServerConfig())
        async with (
            Bridge(config) as bridge,
            BridgeServer(bridge, host="127.0.0.1", port=0, settings=settings) as srv,
        ):
            coalescer = srv.state.gate.coalescer
            yield Server(srv.ws_url, lambda seq: bridge._on_event(_ticker(seq)), lambda: coalescer.flushes)


@asynccontextmanager
async def websockets_server() -> AsyncIterator[Server]:
    clients: set[ServerConnection] = set()
    encode = msgspec.json.Encoder().encode

    async def handler(ws: ServerConnection) -> None:
        try:
            await ws.recv()  # the subscribe request (idle clients send none and wait here)
            ack = {"type": "ack", "id": "t", "op": "subscribe", "stream": "kraken:ticker:BTC/USD"}
            await ws.send(json.dumps(ack))
        except websockets.ConnectionClosed:
            return
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    def publish(seq: int) -> None:
        event = msgspec.json.decode(encode_event(_ticker(seq)))
        broadcast(clients, encode({"type": "event", "id": "t", "seq": seq, "event": event}).decode())

    async with serve(handler, "127.0.0.1", 0, compression=None, max_size=2**20) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield Server(f"ws://127.0.0.1:{port}", publish)


# ---------------------------------------------------------------- clients


async def _spawn(
    url: str, clients: int, *args: str, per_process: int = PER_PROCESS
) -> list[asyncio.subprocess.Process]:
    procs = []
    for start in range(0, clients, per_process):
        count = min(per_process, clients - start)
        procs.append(
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.fanout_clients", "--url", url, "--clients", str(count), *args,
                cwd=REPO, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            )
        )  # fmt: skip
    for proc in procs:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 180)
        if line.strip() != b"ready":
            raise RuntimeError(f"client process failed to connect: {line!r}")
    return procs


async def _results(procs: list[asyncio.subprocess.Process]) -> list[dict[str, Any]]:
    results = []
    for proc in procs:
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    return results


async def _pace(publish: Callable[[int], None], rate: float, seconds: float) -> tuple[int, float]:
    """Publish at `rate` for `seconds`; (events published, wall seconds it really took — more than
    `seconds` when the loop was too busy to come back in time)."""
    start = time.perf_counter()
    sent = 0
    while (elapsed := time.perf_counter() - start) < seconds:
        due = int(elapsed * rate)
        while sent < due:
            publish(sent)
            sent += 1
        await asyncio.sleep(0.001)
    return sent, time.perf_counter() - start


async def load_run(server: Server, clients: int, rate: float, seconds: float) -> dict[str, float]:
    procs = await _spawn(server.url, clients, "--subscribe", SUBSCRIBE, "--seconds", str(seconds + 2))
    before = rss()
    cpu = psutil.Process().cpu_times()
    flushes = server.flushes()
    sent, took = await _pace(server.publish, rate, seconds)
    cpu_after = psutil.Process().cpu_times()
    flushes = server.flushes() - flushes
    grown = rss() - before
    results = await _results(procs)
    latencies = [lat for r in results for lat in r["latencies"]]
    return {
        "published/s": sent / took,
        "delivered/s": sum(r["messages"] for r in results) / took,
        "offered/s": clients * rate,
        "p50 ms": percentile(latencies, 0.50) * 1000,
        "p99 ms": percentile(latencies, 0.99) * 1000,
        "max ms": max(latencies, default=float("nan")) * 1000,
        "server cpu %": 100 * (cpu_after.user + cpu_after.system - cpu.user - cpu.system) / took,
        "server cpu in kernel %": 100 * (cpu_after.system - cpu.system) / took,
        # CPU per event per client, whether written or conflated away: comparable when the machine's
        # load starves the pacer or the clients (delivered/s then measures them, not the server).
        "server cpu us per event per client": 1e6
        * (cpu_after.user + cpu_after.system - cpu.user - cpu.system)
        / max(1, sent * clients),
        "rss growth MB": grown / 2**20,
        # Write rounds (all clients written in each): how long messages wait is about one round.
        **({"write rounds/s": flushes / took} if flushes else {}),
    }


async def idle_memory(server: Server, clients: int) -> tuple[float, float]:
    """(RSS, Python heap) bytes per idle connection; measured on a fresh server, before any load
    (afterwards freed arenas would absorb new connections and hide their cost)."""
    before = rss()
    tracemalloc.start()
    heap_before = tracemalloc.get_traced_memory()[0]
    procs = await _spawn(server.url, clients, "--idle")
    await asyncio.sleep(1.0)  # let handshakes settle into their steady state
    heap = tracemalloc.get_traced_memory()[0] - heap_before
    tracemalloc.stop()
    per_client = (rss() - before) / clients
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.close()
    await _results(procs)
    return per_client, heap / clients


# ---------------------------------------------------------------- the benchmark


async def _run(smoke: bool) -> list[Report]:
    rate, seconds = (100.0, 1.0) if smoke else (1000.0, 5.0)
    small, large, idle = (10, 20, 20) if smoke else (100, 1000, 1000)
    fanout = Report("fanout")
    memory = Report("memory")
    for name, factory in (("brokerbridge", bridge_server), ("websockets", websockets_server)):
        async with factory() as server:
            if name == "brokerbridge":  # the upstream subscription must be live before clients count
                await _warm_up(server)
            per_rss, per_heap = await idle_memory(server, idle)
            memory.add(f"idle client {name} (RSS)", per_rss / 1024, "KB")
            memory.add(f"idle client {name} (Python heap)", per_heap / 1024, "KB")
            for label, clients in (("latency", small), ("throughput", large)):
                figures = await load_run(server, clients, rate, seconds)
                for key, value in figures.items():
                    fanout.add(f"{label} {clients} clients {name} {key}", value)
    fanout.ratio(
        f"throughput {large} clients delivered ratio",
        f"throughput {large} clients brokerbridge delivered/s",
        f"throughput {large} clients websockets delivered/s",
    )
    for label, clients in (("latency", small), ("throughput", large)):
        fanout.ratio(
            f"{label} {clients} clients cpu per event per client ratio",
            f"{label} {clients} clients brokerbridge server cpu us per event per client",
            f"{label} {clients} clients websockets server cpu us per event per client",
        )
    fanout.target(f"latency {small} clients brokerbridge p99 ms", "<=", 2)
    fanout.target(f"throughput {large} clients brokerbridge p99 ms", "<=", 10)
    fanout.target(f"throughput {large} clients delivered ratio", ">=", 3)
    fanout.note(f"upstream {rate:g} msg/s for {seconds:g} s; clients in {PER_PROCESS}-connection processes")
    memory.target("idle client brokerbridge (RSS)", "<=", 30)
    memory.add(
        "rss growth under load brokerbridge",
        fanout.figures[f"throughput {large} clients brokerbridge rss growth MB"],
        "MB",
    )
    memory.note(
        f"{idle} idle connections (no subscription); growth: RSS over the {seconds:g} s throughput run"
    )
    return [fanout, memory]


async def _warm_up(server: Server) -> None:
    async with websockets.connect(server.url, compression=None) as ws:
        await ws.send(SUBSCRIBE)
        while json.loads(await asyncio.wait_for(ws.recv(), 30)).get("type") != "ack":
            pass


def run(smoke: bool) -> list[Report]:
    return asyncio.run(_run(smoke))
