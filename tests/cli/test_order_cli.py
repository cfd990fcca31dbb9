"""`brokerbridge order place|cancel|amend|list|fills` as a user runs it (the Typer app through
`CliRunner`, in a worker thread) against a running server (tests/server/conftest.py's stack on
loopback): the confirmation naming the order and SIMULATED, `--yes`, `--json`, exit codes."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.server.conftest import ACCOUNT_KEY, KEYS, LIMIT, Stack, make_stack
from tests.server.observe import eventually
from typer.testing import CliRunner

from brokerbridge.cli.main import app
from brokerbridge.cli.order import NOT_CONFIRMED, REFUSED
from brokerbridge.core.config import ApiKey
from brokerbridge.core.secret import Secret

TRADE_KEY = "trade-key-0123456789ab"
TRADING_KEYS = (
    *KEYS,
    ApiKey(name="trader", key=Secret(TRADE_KEY), scopes=frozenset({"market", "account", "trade"})),
)
RESTING = ("kraken", "buy", "0.001", "BTC/USD", "--price", "1000")


@dataclass
class Invoked:
    exit_code: int
    stdout: str
    stderr: str


@dataclass
class Rig:
    stack: Stack
    config: Path  # [client] key = the trade key
    no_key: Path  # no [client] key: the CLI signs in with a login link (same machine)
    readonly: Path  # [client] key without trade

    async def cli(self, *args: str, config: Path | None = None, answer: str | None = None) -> Invoked:
        argv = [
            "order",
            *args,
            "--bridge",
            self.stack.server.http_url,
            "--config",
            str(config or self.config),
        ]
        result = await asyncio.to_thread(CliRunner().invoke, app, argv, input=answer, catch_exceptions=False)
        return Invoked(result.exit_code, result.stdout, result.stderr)

    def venue_orders(self) -> int:
        return len(self.stack.kraken_sim.exchange.account.orders)


def client_config(path: Path, key: str | None) -> Path:
    path.write_text(
        f'[server]\nstate_dir = "{path.parent / "state"}"\n' + (f'[client]\nkey = "{key}"\n' if key else ""),
        encoding="utf-8",
    )
    return path


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with make_stack(tmp_path, keys=TRADING_KEYS, simulated=frozenset({"kraken"})) as stack:
        await stack.bridge.wait_ready(LIMIT)
        yield Rig(
            stack,
            client_config(tmp_path / "trade.toml", TRADE_KEY),
            client_config(tmp_path / "nokey.toml", None),
            client_config(tmp_path / "readonly.toml", ACCOUNT_KEY),
        )


async def test_place_asks_naming_the_order_and_simulated_and_sends_nothing_when_declined(rig: Rig) -> None:
    before = rig.venue_orders()
    declined = await rig.cli("place", *RESTING, answer="n\n")
    assert declined.exit_code == NOT_CONFIRMED, declined.stderr
    for word in ("SIMULATED", "kraken", "BUY", "0.001", "BTC/USD", "1000"):
        assert word in declined.stderr, word
    assert rig.venue_orders() == before, "a declined order reached the venue"
    no_terminal = await rig.cli("place", *RESTING)  # nothing to answer with: not confirmed
    assert no_terminal.exit_code == NOT_CONFIRMED and rig.venue_orders() == before

    confirmed = await rig.cli("place", *RESTING, "--json", answer="y\n")
    assert confirmed.exit_code == 0, confirmed.stderr
    ack = json.loads(confirmed.stdout.splitlines()[-1])  # CliRunner echoes the typed answer first
    assert ack["status"] == "accepted" and ack["venue"] == "kraken" and ack["order_id"]
    assert rig.stack.kraken_sim.exchange.account.orders[ack["order_id"]].status in ("pending", "open")


async def test_list_cancel_and_the_exit_codes_of_refusals(rig: Rig) -> None:
    placed = await rig.cli("place", *RESTING, "--yes", "--json", "--client-order-id", "cli-1")
    assert placed.exit_code == 0, placed.stderr
    order_id = json.loads(placed.stdout)["order_id"]
    await eventually(lambda: any(o.order_id == order_id for o in rig.stack.bridge.open_orders("kraken")))
    listed = await rig.cli("list", "kraken", "--json")
    assert listed.exit_code == 0 and order_id in [o["order_id"] for o in json.loads(listed.stdout)]
    table = await rig.cli("list", "kraken")
    assert order_id in table.stdout and "cli-1" in table.stdout

    canceled = await rig.cli("cancel", "kraken", order_id, "--yes", "--json")
    assert canceled.exit_code == 0, canceled.stderr
    assert json.loads(canceled.stdout)["canceled"] == 1
    assert rig.stack.kraken_sim.exchange.account.orders[order_id].status == "canceled"

    unknown = await rig.cli("cancel", "kraken", "OXXXXX-XXXXX-XXX", "--yes", "--json")
    assert unknown.exit_code == REFUSED and json.loads(unknown.stdout)["error"]["code"] == "unknown_order"
    too_big = await rig.cli(
        "place", "kraken", "buy", "5000", "BTC/USD", "--price", "90000", "--yes", "--json"
    )
    assert too_big.exit_code == REFUSED and json.loads(too_big.stdout)["error"]["code"] == "order_rejected"
    empty = await rig.cli("amend", "kraken", order_id, "--yes")
    assert empty.exit_code == REFUSED  # neither --qty nor --price: a bad option

    before = rig.venue_orders()
    readonly = await rig.cli("place", *RESTING, "--yes", "--json", config=rig.readonly)
    assert readonly.exit_code == REFUSED
    error = json.loads(readonly.stdout)["error"]
    assert error["code"] == "not_authorized" and "trade" in error["message"]
    assert rig.venue_orders() == before


async def test_without_a_key_the_cli_on_the_servers_machine_signs_in_to_trade(rig: Rig) -> None:
    placed = await rig.cli("place", *RESTING, "--yes", "--json", config=rig.no_key)
    assert placed.exit_code == 0, placed.stderr
    order_id = json.loads(placed.stdout)["order_id"]
    canceled = await rig.cli("cancel", "kraken", order_id, "--yes", config=rig.no_key)
    assert canceled.exit_code == 0 and "canceled" in canceled.stdout


async def test_fills_as_csv(rig: Rig) -> None:
    bought = await rig.cli(
        "place", "kraken", "buy", "0.001", "BTC/USD", "--type", "market", "--yes", "--json"
    )
    assert bought.exit_code == 0, bought.stderr
    await eventually(lambda: bool(rig.stack.bridge.fills_page("kraken").fills))
    out = await rig.cli("fills", "kraken", "--csv")
    assert out.exit_code == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    fills = rig.stack.bridge.fills_page("kraken").fills
    assert [r["exec_id"] for r in rows] == [f.exec_id for f in fills]
    assert rows[0]["qty"] == str(fills[0].qty) and rows[0]["side"] == "buy"
