"""`brokerbridge watch [venue] [symbols…]`: the positional form and the live view."""

from __future__ import annotations

import json

from doctor_helpers import run_cli


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
