"""`brokerbridge watch [venue] [symbols…]`: the positional form and the live view."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import os
import sys

from doctor_helpers import run_cli
from rich.console import Console

from brokerbridge.cli.watch import _watch, _WatchPlan
from brokerbridge.core.config import Config, KrakenConfig
from brokerbridge.core.secret import Secret
from brokerbridge.sim.kraken import KrakenSimulator


async def test_positional_venue_and_symbols_show_a_live_board() -> None:
    run = await run_cli("watch", "kraken", "BTC/USD", "ETH/USD", "--sim", "--live", "--count", "40")
    assert run.exit_code == 0, run.output
    for title in ("kraken tickers", "balances", "streams"):
        assert title in run.output
    assert "│ BTC/USD" in run.output and "│ ETH/USD" in run.output
    assert "kraken:ticker:ETH/USD" in run.output and "live" in run.output


async def test_positional_symbols_work_with_json_lines() -> None:
    run = await run_cli("watch", "kraken", "ETH/USD", "--sim", "--json", "-C", "ticker", "--count", "3")
    assert run.exit_code == 0, run.output
    events = [json.loads(line) for line in run.output.splitlines()]
    assert {e.get("symbol") for e in events if e["kind"] == "ticker"} == {"ETH/USD"}


async def test_venue_given_twice_must_agree() -> None:
    run = await run_cli("watch", "kraken", "--venue", "primary", "--sim", "--count", "1")
    assert run.exit_code == 2


# -- a clean end ----------------------------------------------------------------------------------


def _sim_env(sim: KrakenSimulator) -> dict[str, str]:
    ep = sim.endpoints
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKERBRIDGE_")}
    return env | {
        "BROKERBRIDGE_KRAKEN_REST_URL": ep.rest,
        "BROKERBRIDGE_KRAKEN_WS_URL": ep.ws_public,
        "BROKERBRIDGE_KRAKEN_WS_AUTH_URL": ep.ws_private,
        "BROKERBRIDGE_KRAKEN_API_KEY": ep.api_key,
        "BROKERBRIDGE_KRAKEN_API_SECRET": ep.api_secret,
        "BROKERBRIDGE_JOURNAL_PATH": ":memory:",
    }


async def test_watch_count_ends_cleanly_while_the_token_request_is_still_out() -> None:
    """`watch --count N` stops while GetWebSocketsToken is still unanswered (the simulator sends
    the headers, never the body): before, the fetch was left running, failed with a ReadError when
    the HTTP client closed under it, and asyncio printed "Task exception was never retrieved" with a
    ~140-line traceback — on Kraken 5 runs out of 5."""
    async with KrakenSimulator(host="127.0.0.1", port=0, seed=5) as sim:
        sim.faults.apply({"rest_headers_only": -1})
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "brokerbridge.cli.main",
            "watch",
            "kraken",
            "BTC/USD",
            "-C",
            "ticker",
            "-C",
            "balances",
            "--lines",
            "--no-sim",
            "--count",
            "12",
            env=_sim_env(sim),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
        assert sim.exchange.private_calls["GetWebSocketsToken"] >= 1  # it was asked for, never answered
    errors = stderr.decode()
    assert process.returncode == 0, errors
    assert len(stdout.decode().splitlines()) == 12
    assert "never retrieved" not in errors and "Traceback" not in errors, errors


async def test_watch_count_leaves_no_token_request_behind() -> None:
    """The same `watch --count` run in this process, so what asyncio's teardown hides in a child
    process shows: when watch returns no token fetch is pending, and once the closed connection's
    bytes have crossed, the loop's exception handler saw nothing. Before, the fetch was pending and
    then failed — "Task exception was never retrieved … GetWebSocketsToken failed: ReadError",
    exactly what `watch` printed on Kraken."""
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    out = Console(file=io.StringIO())
    try:
        async with KrakenSimulator(host="127.0.0.1", port=0, seed=5) as sim:
            sim.faults.apply({"rest_headers_only": -1})  # the token is asked for, never answered
            ep = sim.endpoints
            kraken = KrakenConfig(
                ep.rest, ep.ws_public, ep.ws_private, api_key=ep.api_key, api_secret=Secret(ep.api_secret)
            )
            plan = _WatchPlan("kraken", ["ticker", "balances"], ["BTC/USD"], 10, 1, False, False, 12)
            await _watch(Config(kraken=kraken, journal_path=":memory:"), plan, out, out)
            assert sim.exchange.private_calls["GetWebSocketsToken"] == 1
            pending = [t.get_name() for t in asyncio.all_tasks() if not t.done()]
            left = [name for name in pending if name == "token-fetch"]
            await asyncio.sleep(0.05)  # the closed connection's bytes cross (not time passing)
            gc.collect()
    finally:
        loop.set_exception_handler(previous)
    assert (left, [c.get("message") for c in unhandled]) == ([], [])
