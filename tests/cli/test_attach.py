"""One login for every tool: `serve` (a real process) announces itself in its discovery file, and
`watch`, `status` and `login-link` (the CLI as a user runs it) go through it instead of logging in
to the venue again — the Primary simulator counts the logins it grants. A discovery file left by
a process that is gone is ignored.

The simulators run in this process on loopback (conftest.py); `serve` is a subprocess pointed at
them, so every login it or a tool makes is counted here.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from rich.console import Console
from tests.hardening.cli_rig import Process
from typer.testing import CliRunner

from brokerbridge.cli import discovery
from brokerbridge.cli.attach import find_bridge
from brokerbridge.cli.main import app
from brokerbridge.cli.status import NOT_RUNNING
from brokerbridge.core.config import load_config
from brokerbridge.core.errors import TransportError
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.sim.primary import PrimarySimulator

pytestmark = pytest.mark.asyncio(loop_scope="module")

LIMIT = 60.0


@dataclass
class Invoked:
    exit_code: int
    stdout: str
    stderr: str


async def cli(*args: str) -> Invoked:
    """`brokerbridge …` in a worker thread (its own event loop), while the simulators keep serving."""
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args), catch_exceptions=False)
    return Invoked(result.exit_code, result.stdout, result.stderr)


def write_config(path: Path, kraken: KrakenSimulator, primary: PrimarySimulator) -> Path:
    ke, pe = kraken.endpoints, primary.endpoints
    path.write_text(
        "[kraken]\n"
        f'api_key = "{ke.api_key}"\napi_secret = "{ke.api_secret}"\n'
        f'rest_url = "{ke.rest}"\nws_url = "{ke.ws_public}"\nws_auth_url = "{ke.ws_private}"\n'
        "[primary]\n"
        f'environment = "{pe.rest}"\nuser = "{pe.user}"\npassword = "{pe.password}"\n'
        f'account = "{pe.account}"\nmarket_hours = "always"\n'
        "[server]\n"
        f'state_dir = "{path.parent / "state"}"\n',
        encoding="utf-8",
    )
    return path


@dataclass
class Serving:
    config: Path
    process: Process
    found: discovery.Discovery
    file: Path
    logins_before: int  # the Primary simulator's count before serve started


@pytest_asyncio.fixture(loop_scope="module")
async def serving(
    tmp_path: Path, kraken_sim: KrakenSimulator, primary_sim: PrimarySimulator
) -> AsyncIterator[Serving]:
    config = write_config(tmp_path / "bb.toml", kraken_sim, primary_sim)
    logins_before = primary_sim.exchange.logins
    process = Process("serve", "--port", "0", "--config", str(config), "--no-login-link")
    try:
        first = await asyncio.to_thread(process.read_line, LIMIT)
        assert first.startswith("brokerbridge serving"), first
        file = discovery.discovery_file(str(tmp_path / "state"))
        found = discovery.read(file)  # written before the first line
        assert found is not None and found.pid == process.popen.pid
        yield Serving(config, process, found, file, logins_before)
    finally:
        await asyncio.to_thread(process.stop)


async def test_watch_primary_next_to_serve_makes_no_second_login(
    serving: Serving, primary_sim: PrimarySimulator
) -> None:
    # serve holds its Primary session first (a ticker through its API), as a running one does.
    async with httpx.AsyncClient(base_url=serving.found.url, timeout=LIMIT) as http:
        ticker = await http.get("/api/ticker/primary", params={"symbol": "MERV - XMEV - GGAL - 24hs"})
        assert ticker.status_code == 200, ticker.text
    assert primary_sim.exchange.logins - serving.logins_before == 1
    run = await cli(
        "watch",
        "primary",
        "-C",
        "ticker",
        "-C",
        "balances",
        "--json",
        "--count",
        "8",
        "--config",
        str(serving.config),
    )
    assert run.exit_code == 0, run.stderr
    kinds = {json.loads(line)["kind"] for line in run.stdout.splitlines()}
    assert "ticker" in kinds or "balance_snapshot" in kinds, kinds  # data, through serve
    assert serving.found.url in run.stderr  # it says where it attached
    # serve's own login (at start or when first asked), and none by watch
    assert primary_sim.exchange.logins - serving.logins_before == 1
    async with httpx.AsyncClient(timeout=LIMIT) as http:  # what a check from outside reads
        stats = (await http.get(f"{primary_sim.endpoints.control}/stats")).json()
    assert stats["logins"] == primary_sim.exchange.logins

    # The account data came through serve too (watch signed in with a one-time link).
    status = await cli("status", "--json", "--config", str(serving.config))
    assert status.exit_code == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["url"] == serving.found.url
    assert report["server"]["pid"] == serving.process.popen.pid
    primary = report["server"]["venues"]["primary"]
    assert primary["health"]["token_expires_at"] is not None
    assert primary["balances"]["assets"] > 0
    assert primary_sim.exchange.logins - serving.logins_before == 1


async def test_doctor_and_instruments_next_to_serve_make_no_login(
    serving: Serving, primary_sim: PrimarySimulator
) -> None:
    doctor = await cli("doctor", "primary", "--json", "--config", str(serving.config))
    report = json.loads(doctor.stdout)
    statuses = {step["step"]: step["status"] for step in report["steps"]}
    assert statuses == {
        "host": "pass",  # the steps that need no session, here
        "reach": "pass",
        "serve": "pass",  # the rest through serve
        "serve_market": "pass",
        "serve_account": "pass",
        "serve_session": "pass",
    }, report
    assert doctor.exit_code == 0
    assert primary_sim.endpoints.password not in doctor.stdout + doctor.stderr

    chain = await cli("instruments", "--underlying", "GGAL", "--json", "--config", str(serving.config))
    assert chain.exit_code == 0, chain.stderr
    rows = [json.loads(line) for line in chain.stdout.splitlines()]
    assert rows and all(row["underlying"] for row in rows)

    # The analytics through serve's greeks service: the same options, each with its figures or reasons.
    options = await cli("options", "GGAL", "--json", "--config", str(serving.config))
    assert options.exit_code == 0, options.stderr
    answer = json.loads(options.stdout)
    analysed = {o["symbol"] for group in answer["expiries"] for o in group["options"]}
    assert analysed and analysed <= {row["symbol"] for row in rows}
    for group in answer["expiries"]:
        for option in group["options"]:
            assert option["iv_mid"] is not None or "iv_mid" in option["reasons"], option
    table = await cli("options", "GGAL", "--greeks", "--config", str(serving.config))
    assert table.exit_code == 0, table.stderr
    assert "theta/d" in table.stdout and "business days" in table.stdout
    assert primary_sim.exchange.logins - serving.logins_before == 1  # serve's only


async def test_status_table_and_login_link(serving: Serving) -> None:
    table = await cli("status", "--config", str(serving.config))
    assert table.exit_code == 0, table.stderr
    assert serving.found.url in table.stdout
    for venue in ("kraken", "primary"):
        assert venue in table.stdout

    link = await cli("login-link", "--config", str(serving.config))
    assert link.exit_code == 0, link.stderr
    url = link.stdout.strip()
    assert url.startswith(f"{serving.found.url}/login?code=")
    async with httpx.AsyncClient(timeout=LIMIT) as http:
        answer = await http.get(url, follow_redirects=False)
        assert answer.status_code == 303 and "bb_session" in answer.cookies
        again = await http.get(url, follow_redirects=False)
        assert again.status_code == 401  # one time only


async def test_clean_exit_removes_the_discovery_file_and_status_then_says_none_runs(serving: Serving) -> None:
    code, _, _ = await asyncio.to_thread(serving.process.stop)
    assert code == 0
    assert not serving.file.exists()
    run = await cli("status", "--config", str(serving.config))
    assert run.exit_code == NOT_RUNNING
    link = await cli("login-link", "--config", str(serving.config))
    assert link.exit_code == NOT_RUNNING


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def closed_port() -> int:
    """A TCP port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_stale_discovery_file_is_ignored_and_removed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    file = discovery.discovery_file(str(state))
    discovery.write(file, discovery.Discovery(url="http://127.0.0.1:9", pid=dead_pid(), started_at=0.0))
    assert discovery.read(file) is None
    assert not file.exists()

    config = tmp_path / "bb.toml"
    config.write_text(f'[server]\nstate_dir = "{state}"\n', encoding="utf-8")
    discovery.write(file, discovery.Discovery(url="http://127.0.0.1:9", pid=dead_pid(), started_at=0.0))
    run = await cli("status", "--config", str(config))
    assert run.exit_code == NOT_RUNNING
    assert not file.exists()


async def test_a_live_pid_that_does_not_answer_means_standalone(tmp_path: Path) -> None:
    """A discovery file naming a running process that is not a server (the pid was reused): the
    tool runs standalone; a server the user named that does not answer is an error."""
    state = tmp_path / "state"
    file = discovery.discovery_file(str(state))
    url = f"http://127.0.0.1:{closed_port()}"
    discovery.write(file, discovery.Discovery(url=url, pid=os.getpid(), started_at=0.0))
    config = load_config(env={"BROKERBRIDGE_SERVER_STATE_DIR": str(state)})
    err = Console(stderr=True, quiet=True)
    assert await find_bridge(config, None, None, err) is None
    assert file.exists()  # its process is alive: not stale, only not a server
    with pytest.raises(TransportError):
        await find_bridge(config, url, None, err)
    with pytest.raises(TransportError):
        await find_bridge(load_config(env={"BROKERBRIDGE_CLIENT_URL": url}), None, None, err)
