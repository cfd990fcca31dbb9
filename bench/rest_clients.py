"""The REST load of the Primary endpoint benchmark (bench/primary_endpoint.py), in a process of its
own so that the server's CPU is not shared with its client's (`python -m bench.rest_clients --help`).

`--clients` concurrent loops (aiohttp on uvloop) GET `--url` for `--seconds`, each request with the
`--param`s, the `--param-name` parameter taking the `--param-values` in turn, and the `--header`s;
prints `ready` first and one JSON line at the end: the answers by status and every answer's latency.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time

import aiohttp
import uvloop


async def main(args: argparse.Namespace) -> None:
    headers = dict(h.split(":", 1) for h in args.header)
    fixed = dict(p.split("=", 1) for p in args.param)
    values = itertools.cycle(args.param_values.split("|"))
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    print("ready", flush=True)
    deadline = time.perf_counter() + args.seconds
    connector = aiohttp.TCPConnector(limit=args.clients)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:

        async def loop() -> None:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                async with http.get(args.url, params={**fixed, args.param_name: next(values)}) as answer:
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
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, default=10, help="concurrent request loops")
    parser.add_argument("--header", action="append", default=[], help="NAME:VALUE (repeatable)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--param", action="append", default=[], help="NAME=VALUE sent with every request")
    parser.add_argument("--param-name", default="symbol", help="the parameter that takes --param-values")
    parser.add_argument("--param-values", default="", help="values separated by |, used in turn")
    uvloop.run(main(parser.parse_args()))
