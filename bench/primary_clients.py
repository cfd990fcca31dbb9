"""The client side of the Primary endpoint benchmark (bench/primary_endpoint.py), in processes of
their own so that the server's CPU is not shared with its clients' (`python -m bench.primary_clients
--help`).

WebSocket (`ws`): opens `--clients` connections (picows on uvloop, as bench/fanout_clients.py),
each with `--header`s, sends `--subscribe` and waits for its first message, prints `ready`, lets the
subscription's first snapshots pass (`--settle`), then counts for `--seconds` the messages that
carry `--mark` and prints one JSON line: their count, and the latency of every `--sample`-th of them
per connection — receive wall time − the venue's own time in the message (`--stamp`: `timestamp`,
Primary's `Md` milliseconds, or `ts`, the bridge's event seconds, both the simulator's `Md` time).
Only the mark and the stamp are looked for in each payload, not the whole JSON: the clients must
stay cheap.

REST (`rest`): `--clients` concurrent loops (aiohttp on uvloop) GET `--url` with `--param`
symbols in turn and `--header`s for `--seconds`, and print one JSON line: answers by status and the
latency of every answer.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from typing import cast

import aiohttp
import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect


class _Totals:
    def __init__(self, mark: bytes, stamp: bytes, scale: float, sample: int) -> None:
        self.mark, self.stamp, self.scale, self.sample = mark, stamp, scale, sample
        self.reading = False
        self.messages = 0
        self.latencies: list[float] = []


class _Counter(WSListener):  # type: ignore[misc]
    def __init__(self, totals: _Totals) -> None:
        self._totals = totals
        self.answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seen = 0

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is not WSMsgType.TEXT:
            if frame.msg_type is WSMsgType.CLOSE:
                transport.disconnect()
            return
        if not self.answered.done():
            self.answered.set_result(None)  # the ack, the first Md (or an error: the counts tell)
        totals = self._totals
        if not totals.reading:
            return
        payload = frame.get_payload_as_bytes()
        if totals.mark not in payload:
            return
        totals.messages += 1
        self._seen += 1
        if self._seen % totals.sample == 0:
            start = payload.index(totals.stamp) + len(totals.stamp)
            end = min(i for i in (payload.find(b",", start), payload.find(b"}", start)) if i >= 0)
            totals.latencies.append(time.time() - float(payload[start:end]) * totals.scale)


async def _connect(url: str, headers: dict[str, str], subscribe: str, totals: _Totals) -> WSTransport:
    transport, made = await ws_connect(
        lambda: _Counter(totals), url, extra_headers=headers, max_frame_size=1 << 24,
        websocket_handshake_timeout=60,
    )  # fmt: skip
    listener = cast(_Counter, made)
    transport.send(WSMsgType.TEXT, subscribe.encode())
    await asyncio.wait_for(listener.answered, 120)
    return transport


async def websocket_clients(args: argparse.Namespace) -> None:
    stamp, scale = (b'"timestamp":', 1e-3) if args.stamp == "timestamp" else (b'"ts":', 1.0)
    totals = _Totals(args.mark.encode(), stamp, scale, args.sample)
    headers = dict(h.split(":", 1) for h in args.header)
    connections: list[WSTransport] = []
    for start in range(0, args.clients, 25):  # batches: a burst of SYNs overflows the backlog
        batch = range(start, min(start + 25, args.clients))
        connections += await asyncio.gather(
            *(_connect(args.url, headers, args.subscribe, totals) for _ in batch)
        )
    print("ready", flush=True)
    await asyncio.sleep(args.settle)
    totals.reading = True
    began = time.perf_counter()
    await asyncio.sleep(args.seconds)
    totals.reading = False
    took = time.perf_counter() - began
    for transport in connections:
        transport.disconnect()
    summary = {"clients": len(connections), "messages": totals.messages, "seconds": took}
    print(json.dumps({**summary, "latencies": totals.latencies}), flush=True)


async def rest_clients(args: argparse.Namespace) -> None:
    headers = dict(h.split(":", 1) for h in args.header)
    values = itertools.cycle(args.param_values.split("|"))
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    print("ready", flush=True)
    deadline = time.perf_counter() + args.seconds
    connector = aiohttp.TCPConnector(limit=args.clients)

    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:

        async def loop() -> None:
            while time.perf_counter() < deadline:
                params = {**dict(p.split("=", 1) for p in args.param), args.param_name: next(values)}
                sent = time.perf_counter()
                async with http.get(args.url, params=params) as answer:
                    await answer.read()
                    statuses[str(answer.status)] = statuses.get(str(answer.status), 0) + 1
                latencies.append(time.perf_counter() - sent)

        began = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(args.clients)))
        took = time.perf_counter() - began
    print(json.dumps({"seconds": took, "statuses": statuses, "latencies": latencies}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("kind", choices=("ws", "rest"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--header", action="append", default=[], help="NAME:VALUE (repeatable)")
    parser.add_argument("--seconds", type=float, default=5.0)
    # ws
    parser.add_argument("--subscribe", default="", help="the JSON text to send on each connection first")
    parser.add_argument("--mark", default='"type":"Md"', help="what a counted message contains")
    parser.add_argument("--stamp", choices=("timestamp", "ts"), default="timestamp")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of first snapshots not counted")
    parser.add_argument("--sample", type=int, default=16, help="time every N-th counted message per client")
    # rest
    parser.add_argument("--param", action="append", default=[], help="NAME=VALUE sent with every request")
    parser.add_argument("--param-name", default="symbol", help="the parameter that takes --param-values")
    parser.add_argument("--param-values", default="", help="values separated by |, used in turn")
    parsed = parser.parse_args()
    uvloop.run(websocket_clients(parsed) if parsed.kind == "ws" else rest_clients(parsed))
