"""The client side of the fan-out and memory benchmarks, run as separate processes so that the
server's CPU is not shared with its clients' (`python -m bench.fanout_clients --help`).

Opens `--clients` WebSocket connections (aiohttp, no compression: its receive path costs about a
third of `websockets`', so the clients are less often the bottleneck), sends `--subscribe` on each
and waits for an answer, prints `ready`, then reads for `--seconds` (or, with `--idle`, until stdin
closes) and prints one JSON line: messages received, and the latency of each marked event (receive
wall time − the event's `ts`, which the publisher set to its wall time when it published). Only the
mark and `ts` are read from each text, not the whole JSON: the clients must stay cheap.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time

import aiohttp

MARK = '"source":"rest"'  # set by the publisher (bench/fanout.py) on the events it times


async def _reader(ws: aiohttp.ClientWebSocketResponse, latencies: list[float], counts: list[int]) -> None:
    async for message in ws:
        counts[0] += 1
        text = message.data
        if isinstance(text, str) and MARK in text:
            start = text.index('"ts":') + 5
            latencies.append(time.time() - float(text[start : text.index(",", start)]))


async def _connect(
    session: aiohttp.ClientSession, url: str, subscribe: str | None
) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(url, compress=0, max_msg_size=0, heartbeat=None, autoping=True)
    if subscribe:
        await ws.send_str(subscribe)
        await asyncio.wait_for(ws.receive(), 60)  # ack (or an error, which the run's counts reveal)
    return ws


async def main(args: argparse.Namespace) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=None)
    ) as session:
        connections: list[aiohttp.ClientWebSocketResponse] = []
        for start in range(0, args.clients, 50):  # batches: a burst of 1000 SYNs overflows the backlog
            batch = range(start, min(start + 50, args.clients))
            connections += await asyncio.gather(*(_connect(session, args.url, args.subscribe) for _ in batch))
        print("ready", flush=True)
        if args.idle:
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
            summary: dict[str, object] = {"clients": len(connections)}
        else:
            latencies: list[float] = []
            counts = [0]
            readers = [asyncio.create_task(_reader(ws, latencies, counts)) for ws in connections]
            await asyncio.sleep(args.seconds)
            for task in readers:
                task.cancel()
            for task in readers:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            summary = {"clients": len(connections), "messages": counts[0], "latencies": latencies}
        for ws in connections:
            with contextlib.suppress(Exception):
                await ws.close()
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--subscribe", help="the JSON text to send on each connection first")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--idle", action="store_true", help="hold the connections until stdin closes")
    asyncio.run(main(parser.parse_args()))
