"""The Primary-compatible endpoint: `Md` fan-out on the `/primary/` WebSocket and `marketdata/get`
answered from the bridge's cache — against the bridge's own `/ws` and `/api/book` in the same run.

Set-up (bench/primary_stack.py): the Primary simulator (`brokerbridge sim primary`, seed 7) and
`brokerbridge serve --venue primary` on it, each a process of its own; clients in processes of their
own (bench/fanout_clients.py, picows on uvloop, 100 sockets per process; bench/rest_clients.py,
aiohttp). Symbols: the first `SYMBOLS` BYMA stocks of the simulator's catalogue (it lists 354 BYMA
instruments: 316 stocks and CEDEARs in CI and 24hs, 12 bonds, 20 GGAL options, 6 cauciones).

* `/primary/` WebSocket: `CLIENTS` clients, each with a bridge token (`POST /primary/auth/getToken`)
  as the `X-Auth-Token` upgrade header, one `smd` for all the symbols with entries BI/OF/LA at depth
  5. Counted: `Md` messages delivered per second (all clients), added latency = receive wall time −
  the `Md` frame's `timestamp` (the simulator's time when it sent the frame upstream; p50/p99 of
  every 16th per client), and `serve`'s CPU (user + system of its process) per client.
* Baseline, `/ws`: the same clients subscribed with one batch `subscribe` to the `book` channel at
  depth 5 for the same symbols (what BI/OF carry; LA is the trades channel there: left out, it
  would double the messages). Counted alike: events delivered, receive time − the event's `ts` (the
  same `Md` timestamp, kept by the Primary session), CPU per client.
* REST from the cache: while one `/primary/` socket holds the symbols' subscription (so the bridge
  has their books), `REST_CLIENTS` concurrent loops GET `/primary/rest/marketdata/get?marketId=
  ROFX&symbol=…&entries=BI,OF,LA&depth=5` over the symbols in turn — requests/s and p50/p99 — and,
  as baseline, the bridge's own `/api/book/primary?symbol=…&depth=5` the same way. The simulator's
  counters tell whether any of them reached the venue (`upstream marketdata/get calls`: 0 when
  every answer came from the cache).

Both socket rounds start after the subscriptions' first snapshots (`SETTLE_S`) and last `SECONDS`.
Upstream the simulator sends an instrument's `Md` at most every 0.5 s and only when it changed:
with 300 instruments that is at most 600 frames/s into the bridge, 120 k/s to deliver to 200 clients
— more than two shared cores can write, so the delivered rate measures the server at saturation.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import websockets

from bench.common import REPO, SEED, Report, percentile
from bench.fanout import _results, _spawn
from bench.primary_stack import KEY, Serve, Simulator, byma_symbols

PER_PROCESS = 100  # socket clients per process
ENTRIES = ["BI", "OF", "LA"]
DEPTH = 5


def smd(symbols: Sequence[str]) -> str:
    products = [{"symbol": s, "marketId": "ROFX"} for s in symbols]
    return json.dumps({"type": "smd", "level": 1, "depth": DEPTH, "entries": ENTRIES, "products": products})


def book_subscribe(symbols: Sequence[str]) -> str:
    return json.dumps(
        {
            "op": "subscribe",
            "id": "b",
            "venue": "primary",
            "channel": "book",
            "symbols": list(symbols),
            "depth": DEPTH,
        }
    )


async def _spawn_rest(args: list[str]) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.rest_clients", *args,
        cwd=REPO, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    if line.strip() != b"ready":
        raise RuntimeError(f"the REST client process failed to start: {line!r}")
    return proc


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


@dataclass(frozen=True)
class SocketRound:
    """One way in for the same clients: where, with which headers, what they send, what they count."""

    name: str
    url: str
    headers: list[str]
    subscribe: str
    mark: str  # text a counted message contains
    stamp: str  # its field with the venue's time: "timestamp" (ms) or "ts" (s)


async def socket_round(
    way: SocketRound, clients: int, seconds: float, settle: float, serve: psutil.Process
) -> dict[str, float]:
    args = ["--subscribe", way.subscribe, "--mark", way.mark, "--stamp", way.stamp, "--sample", "16"]
    args += ["--seconds", str(seconds), "--settle", str(settle)]
    for header in way.headers:
        args += ["--header", header]
    procs = await _spawn(way.url, clients, *args, per_process=PER_PROCESS)
    await asyncio.sleep(settle)  # the clients count from here (each after its own settle)
    cpu, began = _cpu_seconds(serve), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, took = _cpu_seconds(serve) - cpu, time.perf_counter() - began
    results = await _results(procs)
    latencies = [lat for r in results for lat in r["latencies"]]
    return {
        "delivered/s": sum(r["messages"] for r in results) / seconds,
        "p50 added latency ms": percentile(latencies, 0.50) * 1000,
        "p99 added latency ms": percentile(latencies, 0.99) * 1000,
        "serve cpu %": 100 * cpu / took,
        "serve cpu ms per client per s": 1000 * cpu / took / clients,
    }


async def rest_round(
    url: str, headers: list[str], params: list[str], symbols: Sequence[str], clients: int, seconds: float
) -> dict[str, float]:
    args = ["--url", url, "--clients", str(clients), "--seconds", str(seconds)]
    args += ["--param-values", "|".join(symbols)]
    for header in headers:
        args += ["--header", header]
    for param in params:
        args += ["--param", param]
    proc = await _spawn_rest(args)
    out, _ = await asyncio.wait_for(proc.communicate(), seconds + 60)
    result = json.loads(out.decode().strip().splitlines()[-1])
    latencies = result["latencies"]
    ok = result["statuses"].get("200", 0)
    return {
        "requests/s": len(latencies) / result["seconds"],
        "answers not 200": float(len(latencies) - ok),
        "p50 ms": percentile(latencies, 0.50) * 1000,
        "p99 ms": percentile(latencies, 0.99) * 1000,
    }


async def _run(smoke: bool) -> list[Report]:
    clients, symbols_n, seconds, settle = (10, 20, 1.0, 1.0) if smoke else (200, 300, 10.0, 5.0)
    rest_clients, rest_seconds = (4, 1.0) if smoke else (16, 5.0)
    report = Report("primary_endpoint")
    symbols = byma_symbols(symbols_n)
    with tempfile.TemporaryDirectory(prefix="bb-bench-primary-") as tmp:
        workdir = Path(tmp)
        sim = Simulator(workdir, SEED)
        await sim.start()
        serve = Serve(workdir, sim.ends, server_extra="client_queue_size = 5000\n")
        try:
            await serve.start()
            process = psutil.Process(serve.pid)
            async with httpx.AsyncClient(timeout=30) as http:
                token = await serve.get_token(http)
            primary_ws = f"{serve.ws_url}/primary/"
            auth = [f"X-Auth-Token:{token}"]
            ways = (
                SocketRound("primary", primary_ws, auth, smd(symbols), '"type":"Md"', "timestamp"),
                SocketRound("ws", f"{serve.ws_url}/ws", [], book_subscribe(symbols), '"type":"event"', "ts"),
            )
            for way in ways:
                figures = await socket_round(way, clients, seconds, settle, process)
                for key, value in figures.items():
                    report.add(f"{way.name} {clients} clients {key}", value)
            # REST: one socket holds the subscription, so the bridge keeps the books.
            async with websockets.connect(
                primary_ws, additional_headers={"X-Auth-Token": token}, max_size=None
            ) as holder:
                await holder.send(smd(symbols))
                await asyncio.wait_for(holder.recv(), 60)
                before = await sim.stats()
                md_params = ["marketId=ROFX", "entries=BI,OF,LA", f"depth={DEPTH}"]
                rest = (
                    ("primary marketdata/get", f"{serve.url}/primary/rest/marketdata/get", auth, md_params),
                    (
                        "api/book",
                        f"{serve.url}/api/book/primary",
                        [f"Authorization:Bearer {KEY}"],
                        [f"depth={DEPTH}"],
                    ),
                )
                for name, url, headers, params in rest:
                    figures = await rest_round(url, headers, params, symbols, rest_clients, rest_seconds)
                    for key, value in figures.items():
                        report.add(f"rest {name} {key}", value)
                after = await sim.stats()
            upstream = after["rest_calls"].get("marketdata/get", 0) - before["rest_calls"].get(
                "marketdata/get", 0
            )
            report.add("rest upstream marketdata/get calls", float(upstream))
            report.add("upstream logins", float(after["logins"]))
        finally:
            await serve.stop()
            await sim.stop()
    n = f"{clients} clients"
    report.ratio(f"{n} delivered ratio (primary / ws)", f"primary {n} delivered/s", f"ws {n} delivered/s")
    report.ratio(
        f"{n} p99 ratio (primary / ws)", f"primary {n} p99 added latency ms", f"ws {n} p99 added latency ms"
    )
    report.ratio(
        f"{n} cpu per client ratio (primary / ws)",
        f"primary {n} serve cpu ms per client per s",
        f"ws {n} serve cpu ms per client per s",
    )
    report.ratio(
        "rest requests/s ratio (marketdata/get / api/book)",
        "rest primary marketdata/get requests/s",
        "rest api/book requests/s",
    )
    report.note(
        f"{len(symbols)} BYMA symbols, BI/OF/LA depth {DEPTH} (/ws: book depth {DEPTH}); {seconds:g} s per "
        f"socket round after {settle:g} s of first snapshots; REST {rest_clients} concurrent loops for "
        f"{rest_seconds:g} s; clients in processes of {PER_PROCESS}"
    )
    return [report]


def run(smoke: bool) -> list[Report]:
    return asyncio.run(_run(smoke))
