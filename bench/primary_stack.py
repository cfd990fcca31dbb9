"""The Primary simulator and `brokerbridge serve` on it, each a child process as a deployment runs
them: shared by the Primary endpoint's benchmark (bench/primary_endpoint.py) and its soak
(tests/soak/primary.py).

`Simulator` runs `brokerbridge sim primary` (its endpoints from the first stdout line, its counters
from `GET /_sim/stats`); `Serve` writes a config pointing `[primary]` at it with one API key
(`KEY_NAME`/`KEY`) and one bridge-local user (`USER`/`USER_PASSWORD`, scopes read + trade) — either
pair is what a client gives `POST /primary/auth/getToken` as X-Username/X-Password —, runs
`serve --venue primary` and waits for `/api/ready`. Logs go to files in the work directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from brokerbridge.core.passwords import hash_password
from brokerbridge.sim.primary.catalog import default_catalog

KEY_NAME = "soak"
KEY = "soak-primary-endpoint-key-0123456789"
USER = "trader"  # a bridge-local user: what a person types into a Primary client
USER_PASSWORD = "soak-trader-password"
START_LIMIT_S = 90.0  # `serve` ready (the first start builds the instrument cache)


def byma_symbols(count: int) -> list[str]:
    """BYMA stocks of the simulator's catalogue, in its order (the list the simulator builds today:
    316 stocks and CEDEARs, CI and 24hs, then bonds, options and cauciones — 354 BYMA in all)."""
    catalogue = default_catalog(dt.datetime.now(dt.UTC).date())
    stocks = [i.symbol for i in catalogue.instruments if i.byma and i.kind == "stock"]
    return stocks[:count]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def child_env() -> dict[str, str]:
    """No user config or credentials leak in; loopback never goes through a proxy."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKERBRIDGE_")}
    loopback = "127.0.0.1,localhost"
    env.update(PYTHONUNBUFFERED="1", NO_COLOR="1", COLUMNS="200", NO_PROXY=loopback, no_proxy=loopback)
    return env


async def stop_process(process: asyncio.subprocess.Process | None, sig: signal.Signals) -> None:
    """`sig`, then SIGKILL if it has not ended within 30 s."""
    if process is None or process.returncode is not None:
        return
    process.send_signal(sig)
    try:
        await asyncio.wait_for(process.wait(), 30)
    except TimeoutError:
        process.kill()
        await process.wait()


class Simulator:
    """`brokerbridge sim primary` (or `venue`) as a child process; `args`: more of its options."""

    def __init__(
        self,
        workdir: Path,
        seed: int,
        *,
        token_ttl: float | None = None,
        relogin_invalidates: bool = True,
        venue: str = "primary",
        args: Sequence[str] = (),
    ) -> None:
        self.workdir, self.seed, self.token_ttl = workdir, seed, token_ttl
        self.relogin_invalidates = relogin_invalidates
        self.venue, self.args = venue, list(args)
        self.log = workdir / ("sim.log" if venue == "primary" else f"sim-{venue}.log")
        self.process: asyncio.subprocess.Process | None = None
        self.ends: dict[str, str] = {}

    async def start(self) -> None:
        command = [sys.executable, "-m", "brokerbridge.cli.main", "sim", self.venue, "--port", "0"]
        command += ["--seed", str(self.seed), "--log-level", "WARNING", "--log-format", "plain", *self.args]
        if self.token_ttl is not None:
            command += ["--token-ttl", str(self.token_ttl)]
        if not self.relogin_invalidates:
            command.append("--no-relogin-invalidates")
        with self.log.open("a", encoding="utf-8") as log:
            self.process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=log,
                env=child_env(),
            )  # fmt: skip
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), START_LIMIT_S)
        if not line:
            raise RuntimeError(f"the simulator exited before it printed its endpoints; see {self.log}")
        self.ends = json.loads(line)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def stats(self) -> dict[str, Any]:
        """What the venue saw of its clients (`UsageStats` as JSON)."""
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.get(f"{self.ends['control']}/stats")
            answer.raise_for_status()
            stats: dict[str, Any] = answer.json()
            return stats

    async def stop(self) -> None:
        await stop_process(self.process, signal.SIGINT)


async def start_serve(
    config: Path, port: int, log: Path, key: str, args: Sequence[str] = ()
) -> asyncio.subprocess.Process:
    """`brokerbridge serve --config config --port port [args]`, logging to `log`, once `/api/ready`
    answers 200 to `key`."""
    started = time.monotonic()
    command = [sys.executable, "-m", "brokerbridge.cli.main", "serve", "--config", str(config)]
    command += ["--port", str(port), "--no-login-link", *args]
    with log.open("a", encoding="utf-8") as out:
        process = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, env=child_env()
        )
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=5) as http:
        while time.monotonic() - started < START_LIMIT_S:  # polled: readiness has no event to await
            if process.returncode is not None:
                raise RuntimeError(f"serve exited with {process.returncode}; see {log}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/api/ready")).status_code == 200:
                    return process
            await asyncio.sleep(0.2)
    await stop_process(process, signal.SIGKILL)
    raise RuntimeError(f"serve was not ready within {START_LIMIT_S:.0f} s; see {log}")


class Serve:
    """`brokerbridge serve --venue primary` on a config pointed at `sim` (its endpoints)."""

    def __init__(
        self, workdir: Path, sim: dict[str, str], *, relogin_s: float | None = None, server_extra: str = ""
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.config = workdir / "brokerbridge.toml"
        relogin = f"relogin_interval = {relogin_s}\n" if relogin_s is not None else ""
        self.config.write_text(
            f'log_format = "plain"\njournal_path = "{workdir / "journal.sqlite3"}"\n'
            "[primary]\n"
            f'environment = "{sim["rest"]}"\nuser = "{sim["user"]}"\npassword = "{sim["password"]}"\n'
            f'account = "{sim["account"]}"\nmarket_hours = "always"\n'
            f'instruments_cache_dir = "{workdir / "cache"}"\n{relogin}'
            "[server]\n"
            f'state_dir = "{workdir / "state"}"\nvenues = ["primary"]\n'
            # Every client logs in with the one key: a deployment serving this many connections
            # from one credential raises the per-key cap (default 20) the same way.
            f"max_connections_per_key = 2000\n{server_extra}"
            f'[server.keys.{KEY_NAME}]\nkey = "{KEY}"\nscopes = ["market", "account", "trade"]\n'
            f'[server.users.{USER}]\npassword_hash = "{hash_password(USER_PASSWORD)}"\n'
            'scopes = ["read", "trade"]\n',
            encoding="utf-8",
        )
        self.log = workdir / "serve.log"
        self.process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        self.process = await start_serve(self.config, self.port, self.log, KEY)

    async def get_token(self, http: httpx.AsyncClient) -> str:
        """A bridge token from `POST /primary/auth/getToken` (the key's name and the key)."""
        answer = await http.post(
            f"{self.url}/primary/auth/getToken", headers={"X-Username": KEY_NAME, "X-Password": KEY}
        )
        token: str | None = answer.headers.get("X-Auth-Token")
        if answer.status_code != 200 or not token:
            raise RuntimeError(f"getToken answered {answer.status_code}: {answer.text[:200]}")
        return token

    def error_lines(self) -> list[str]:
        """The ERROR lines serve logged (data lost or a bug, by the logging policy)."""
        if not self.log.exists():
            return []
        return [
            line.strip() for line in self.log.read_text(errors="replace").splitlines() if " ERROR " in line
        ]

    async def stop(self) -> None:
        await stop_process(self.process, signal.SIGTERM)
