"""The client side of the fan-out and memory benchmarks, run as separate processes so that the
server's CPU is not shared with its clients' (`python -m bench.fanout_clients --help`).

Opens `--clients` WebSocket connections (picows on uvloop: a frame reaches Python as one callback
with the payload in a C buffer — about a third of aiohttp's cost per message, so on a two-core
machine the clients are less often what limits a run), sends `--subscribe` on each and waits for
an answer, prints `ready`, then reads for `--seconds` (or, with `--idle`, until stdin closes) and
prints one JSON line: marked events received, and the latency of every `--sample`-th of them per
connection (receive wall time − the event's `ts`, which the publisher set to its wall time when it
published). Only the mark is looked for in each payload and `ts` read from the sampled ones, not
the whole JSON: the clients must stay cheap.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import cast

import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

MARK = b'"source":"rest"'  # set by the publisher (bench/fanout.py) on the events it times
TS = b'"ts":'


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
        totals = self._totals
        if not totals.reading:
            if not self.answered.done():
                self.answered.set_result(None)  # the subscribe's ack (or an error: the counts tell)
            return
        payload = frame.get_payload_as_bytes()
        if MARK not in payload:
            return
        totals.messages += 1
        self._seen += 1
        if self._seen % totals.sample == 0:
            start = payload.index(TS) + 5
            totals.latencies.append(time.time() - float(payload[start : payload.index(b",", start)]))


class _Totals:
    def __init__(self, sample: int) -> None:
        self.sample = sample
        self.reading = False
        self.messages = 0
        self.latencies: list[float] = []


async def _connect(url: str, subscribe: str | None, totals: _Totals) -> tuple[WSTransport, _Counter]:
    transport, made = await ws_connect(lambda: _Counter(totals), url)
    listener = cast(_Counter, made)
    if subscribe:
        transport.send(WSMsgType.TEXT, subscribe.encode())
        await asyncio.wait_for(listener.answered, 60)
    return transport, listener


async def main(args: argparse.Namespace) -> None:
    totals = _Totals(args.sample)
    connections: list[tuple[WSTransport, _Counter]] = []
    for start in range(0, args.clients, 50):  # batches: a burst of 1000 SYNs overflows the backlog
        batch = range(start, min(start + 50, args.clients))
        connections += await asyncio.gather(*(_connect(args.url, args.subscribe, totals) for _ in batch))
    print("ready", flush=True)
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
    for transport, _ in connections:
        transport.disconnect()
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--subscribe", help="the JSON text to send on each connection first")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--sample", type=int, default=8, help="time every N-th marked event per connection")
    parser.add_argument("--idle", action="store_true", help="hold the connections until stdin closes")
    uvloop.run(main(parser.parse_args()))
