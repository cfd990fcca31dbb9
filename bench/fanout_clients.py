"""The client side of the fan-out and memory benchmarks, run as separate processes so that the
server's CPU is not shared with its clients' (`python -m bench.fanout_clients --help`).

Opens `--clients` WebSocket connections (picows on uvloop: a frame reaches Python as one callback
with the payload in a C buffer — about a third of aiohttp's cost per message, so on a two-core
machine the clients are less often what limits a run), with `--header`s on the upgrade, sends
each `--subscribe` on each and waits for the first answer, prints `ready`, lets `--settle` seconds pass (a
subscription's first snapshots), then reads for `--seconds` (or, with `--idle`, until stdin closes)
and prints one JSON line: marked events received, and the latency of every `--sample`-th of them
per connection (receive wall time − the message's `--stamp`: the event's `ts`, which the fan-out
publisher set to its wall time when it published, or a Primary `Md` frame's `timestamp` in ms).
Only the mark (`--mark`) is looked for in each payload and the stamp read from the sampled ones, not
the whole JSON: the clients must stay cheap. With `--probe`, the first connection also records every
marked event as [key, stamp, receive time]: the key is a digest of the payload from its `"event":`
on with the stamp's value left out, the same for the same event whichever server delivered it (the
envelope's per-connection `seq` is not in it) — so two paths' deliveries of one venue event can be
paired (bench/cluster_nodes.py).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import time
from typing import cast

import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

MARK = '"source":"rest"'  # set by the publisher (bench/fanout.py) on the events it times
STAMPS = {"ts": (b'"ts":', 1.0), "timestamp": (b'"timestamp":', 1e-3)}  # field, its unit in seconds


def stamp_span(payload: bytes, field: bytes) -> tuple[int, int]:
    """Where the value of the first `field` (`"ts":`) is in the payload: [start, end)."""
    start = payload.index(field) + len(field)
    end = min(i for i in (payload.find(b",", start), payload.find(b"}", start)) if i >= 0)
    return start, end


def event_key(payload: bytes, stamp_start: int, stamp_end: int) -> str:
    """The same text for the same event whichever server sent it: the payload from its `"event":`
    on (the envelope's `id` and per-connection `seq` left out) without the stamp's value (Kraken
    stamps a frame for each session it sends it to), as a digest."""
    body = payload.find(b'"event":')
    key = payload[max(body, 0) : stamp_start] + payload[stamp_end:]
    return hashlib.blake2b(key, digest_size=8).hexdigest()


class _Counter(WSListener):  # type: ignore[misc]
    def __init__(self, totals: _Totals, probe: bool = False) -> None:
        self._totals = totals
        self.answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seen = 0
        self._probe = probe

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is not WSMsgType.TEXT:
            if frame.msg_type is WSMsgType.CLOSE:
                transport.disconnect()
            return
        totals = self._totals
        if not totals.reading:
            if not self.answered.done():
                self.answered.set_result(None)  # the subscribe's ack (or an error: the counts tell)
            return
        payload = frame.get_payload_as_bytes()
        if totals.mark not in payload:
            return
        totals.messages += 1
        self._seen += 1
        if self._probe or self._seen % totals.sample == 0:
            received = time.time()
            start, end = stamp_span(payload, totals.stamp)
            stamp = float(payload[start:end]) * totals.unit
            if self._seen % totals.sample == 0:
                totals.latencies.append(received - stamp)
            if self._probe:
                totals.probe.append((event_key(payload, start, end), stamp, received))


class _Totals:
    def __init__(self, sample: int, mark: str, stamp: str) -> None:
        self.sample = sample
        self.mark = mark.encode()
        self.stamp, self.unit = STAMPS[stamp]
        self.reading = False
        self.messages = 0
        self.latencies: list[float] = []
        self.probe: list[tuple[str, float, float]] = []  # key, stamp, received (s)


async def _connect(
    url: str, headers: dict[str, str], subscribe: list[str], totals: _Totals, probe: bool = False
) -> tuple[WSTransport, _Counter]:
    transport, made = await ws_connect(
        lambda: _Counter(totals, probe), url, extra_headers=headers, max_frame_size=1 << 24,
        websocket_handshake_timeout=60,
    )  # fmt: skip
    listener = cast(_Counter, made)
    for text in subscribe:
        transport.send(WSMsgType.TEXT, text.encode())
    if subscribe:
        await asyncio.wait_for(listener.answered, 120)
    return transport, listener


async def main(args: argparse.Namespace) -> None:
    totals = _Totals(args.sample, args.mark, args.stamp)
    headers = dict(header.split(":", 1) for header in args.header)
    connections: list[tuple[WSTransport, _Counter]] = []
    for start in range(0, args.clients, 50):  # batches: a burst of 1000 SYNs overflows the backlog
        batch = range(start, min(start + 50, args.clients))
        connections += await asyncio.gather(
            *(_connect(args.url, headers, args.subscribe, totals, args.probe and i == 0) for i in batch)
        )
    print("ready", flush=True)
    await asyncio.sleep(args.settle)
    if args.idle:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        summary: dict[str, object] = {"clients": len(connections)}
    else:
        totals.reading = True
        await asyncio.sleep(args.seconds)
        totals.reading = False
        summary = {
            "clients": len(connections),
            "messages": totals.messages,
            "sample": totals.sample,
            "latencies": totals.latencies,
        }
        if args.probe:
            summary["probe"] = totals.probe
    for transport, _ in connections:
        transport.disconnect()
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument(
        "--subscribe", action="append", default=[], help="text to send on each connection first (repeatable)"
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--sample", type=int, default=8, help="time every N-th marked event per connection")
    parser.add_argument("--idle", action="store_true", help="hold the connections until stdin closes")
    parser.add_argument(
        "--header", action="append", default=[], help="NAME:VALUE on the upgrade (repeatable)"
    )
    parser.add_argument("--mark", default=MARK, help="what a counted message contains")
    parser.add_argument(
        "--stamp", choices=tuple(STAMPS), default="ts", help="the field with the venue's time"
    )
    parser.add_argument("--settle", type=float, default=0.0, help="seconds after ready before reading")
    parser.add_argument(
        "--probe", action="store_true", help="the first connection records every marked event's key and times"
    )
    uvloop.run(main(parser.parse_args()))
