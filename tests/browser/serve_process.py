"""`brokerbridge serve` as a child process on the embedded simulators, as a user runs it.

Reads what `serve` prints: the dashboard sign-in link and the API address on stdout, the simulators'
addresses (whose `/_sim/faults` control endpoint lives on the same port) on stderr.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

START_LIMIT_S = 90.0  # both simulators build a day of history first; CI machines are slow

_LOGIN = re.compile(r"Dashboard:\s+(?P<url>http://\S+/login\?code=\S+)")
_DOCS = re.compile(r"API docs:\s+(?P<base>http://\S+?)/docs")
# Rich may wrap the stderr notice, so whitespace (newlines included) may sit anywhere in between.
_SIM = re.compile(r"local (?P<venue>Kraken|Primary) simulator at\s+(?P<url>http://[\d.:]+)/?")


@dataclass
class Serve:
    """One running `serve`; `stop()` sends SIGTERM (what Ctrl-C or a service manager does)."""

    process: subprocess.Popen[str]
    base_url: str
    login_url: str
    sim_urls: dict[str, str]  # "kraken"/"primary" → http://127.0.0.1:PORT
    stderr_lines: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def fresh_login_url(self) -> str:
        """A new one-time sign-in link (`POST /api/login-link`, allowed from the server's machine):
        the one `serve` printed works once, for whichever test of the module uses it first."""
        response = httpx.post(f"{self.base_url}/api/login-link", timeout=10)
        response.raise_for_status()
        url: str = response.json()["url"]
        return url

    def sim_faults(self, venue: str, switches: dict[str, object]) -> None:
        response = httpx.post(f"{self.sim_urls[venue]}/_sim/faults", json=switches, timeout=10)
        response.raise_for_status()

    def sim_reset(self, venue: str) -> None:
        httpx.post(f"{self.sim_urls[venue]}/_sim/faults/reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


ACCOUNT_KEY = "browser-test-account-key-0123"  # a dashboard user's API key (scopes market + account)


def write_config(directory: Path) -> Path:
    """A config that keeps the Primary instrument cache and the session key inside `directory`,
    with one API key the sign-in form can use."""
    path = directory / "brokerbridge.toml"
    path.write_text(
        f'[primary]\ninstruments_cache_dir = "{directory / "cache"}"\n\n'
        f'[server]\nstate_dir = "{directory / "state"}"\n\n'
        f'[server.keys.trader]\nkey = "{ACCOUNT_KEY}"\nscopes = ["market", "account"]\n',
        encoding="utf-8",
    )
    return path


def start_serve(
    config: Path,
    port: int = 0,
    venues: tuple[str, ...] = ("kraken", "primary"),
    simulated: tuple[str, ...] | None = None,
) -> Serve:
    """`serve` on the simulators of `venues` (all by default; fewer: `--venue` each). `simulated`:
    the venues to run on embedded simulators when not all (no `--sim`: the others are configured
    in `config`, e.g. pointed at a `brokerbridge sim` child process whose credentials the test knows)."""
    embedded = venues if simulated is None else simulated
    env = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("BROKERBRIDGE_CONFIG", None)
    command = [sys.executable, "-m", "brokerbridge.cli.main", "serve", "--config", str(config)]
    command += ["--port", str(port)] + (["--sim"] if simulated is None else [])
    if set(venues) != {"kraken", "primary"}:
        command += [arg for venue in venues for arg in ("--venue", venue)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, bufsize=1
    )
    assert process.stdout is not None and process.stderr is not None
    lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
    stderr_lines: list[str] = []
    _pump(process.stdout, "out", lines)
    _pump(process.stderr, "err", lines, keep=stderr_lines)
    out: list[str] = []
    try:
        while True:
            stream, line = lines.get(timeout=START_LIMIT_S)
            if line is None:
                if stream == "out":
                    raise RuntimeError("serve exited before it was ready:\n" + "".join(stderr_lines))
                continue
            if stream == "out":
                out.append(line)
                if line.startswith("Press Ctrl-C"):
                    break
    except queue.Empty:
        process.kill()
        raise RuntimeError("serve did not start in time:\n" + "".join(out + stderr_lines)) from None
    stdout_text = "".join(out)
    login = _LOGIN.search(stdout_text)
    docs = _DOCS.search(stdout_text)
    assert login and docs, f"serve printed no dashboard link / API address:\n{stdout_text}"
    # stderr is read on its own thread: its notices (printed before stdout's) may trail a little.
    deadline = time.monotonic() + 10
    while True:
        sims = {m["venue"].lower(): m["url"] for m in _SIM.finditer("".join(stderr_lines))}
        if set(sims) == set(embedded) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert set(sims) == set(embedded), f"simulator addresses not found:\n{''.join(stderr_lines)}"
    return Serve(process, docs["base"], login["url"], sims, stderr_lines)


def _pump(
    stream: IO[str], name: str, lines: queue.Queue[tuple[str, str | None]], keep: list[str] | None = None
) -> None:
    """Read `stream` on a thread (pipes must be drained or the child blocks on a full buffer)."""

    def run() -> None:
        for line in stream:
            if keep is not None:
                keep.append(line)
            lines.put((name, line))
        lines.put((name, None))

    threading.Thread(target=run, name=f"serve-{name}", daemon=True).start()
