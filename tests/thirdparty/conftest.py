"""Fixtures for the third-party fidelity suite.

Every test module gets its own simulator *process* (module scope), started exactly like a user
would: ``python -m brokerbridge.cli.main sim kraken --port 0 --seed 7``. The first stdout line is
the endpoint JSON; on teardown the process gets SIGINT and must exit with code 0.

One process per module also keeps API-key nonces apart: python-kraken-sdk uses 1e8/s nonces
and ccxt uses milliseconds, so a key first used by the SDK would reject ccxt (as real Kraken does).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

STARTUP_TIMEOUT_S = 30.0
SHUTDOWN_TIMEOUT_S = 15.0


@dataclass
class SimProcess:
    venue: str
    rest: str
    ws_public: str
    ws_private: str
    control: str
    api_key: str
    api_secret: str
    proc: subprocess.Popen[str] = field(repr=False)
    stderr_path: str = field(repr=False)

    # python-kraken-sdk appends "/v2" to ws_url/auth_ws_url itself
    # (kraken/spot/websocket/__init__.py: ``self.WS_URL += self.API_V``), so hand it the bases.
    @property
    def pks_ws_url(self) -> str:
        assert self.ws_public.endswith("/v2"), self.ws_public
        return self.ws_public[: -len("/v2")]

    @property
    def pks_auth_ws_url(self) -> str:
        assert self.ws_private.endswith("/v2"), self.ws_private
        return self.ws_private[: -len("/v2")]

    # ---- control endpoint -------------------------------------------------------------------
    def _control(self, method: str, path: str, body: Any | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.control + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            text = resp.read().decode()
        return json.loads(text) if text.strip() else None

    def get_faults(self) -> dict[str, Any]:
        return self._control("GET", "/faults")

    def set_faults(self, **switches: Any) -> Any:
        return self._control("POST", "/faults", switches)

    def reset_faults(self) -> Any:
        return self._control("POST", "/faults/reset", {})

    def stderr_tail(self, n: int = 4000) -> str:
        try:
            with open(self.stderr_path, encoding="utf-8", errors="replace") as fh:
                return fh.read()[-n:]
        except OSError:
            return ""


def _start_sim() -> SimProcess:
    stderr_file = tempfile.NamedTemporaryFile(prefix="bb-sim-kraken-", suffix=".stderr", delete=False)
    env = dict(os.environ)
    env["NO_PROXY"] = env["no_proxy"] = _loopback_no_proxy()
    proc = subprocess.Popen(
        [sys.executable, "-m", "brokerbridge.cli.main", "sim", "kraken", "--port", "0", "--seed", "7"],
        stdout=subprocess.PIPE,
        stderr=stderr_file,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:  # first line to the queue, the rest drained so the pipe never blocks
        assert proc.stdout is not None
        first = True
        for line in proc.stdout:
            if first:
                lines.put(line)
                first = False
        if first:
            lines.put(None)

    threading.Thread(target=pump, name="sim-stdout", daemon=True).start()
    try:
        first_line = lines.get(timeout=STARTUP_TIMEOUT_S)
    except queue.Empty:
        proc.kill()
        proc.wait()
        pytest.fail(
            f"simulator printed no endpoint line within {STARTUP_TIMEOUT_S}s "
            f"(is stdout flushed?). stderr:\n{open(stderr_file.name).read()[-4000:]}"
        )
    if first_line is None:
        rc = proc.wait()
        pytest.fail(
            f"simulator exited (rc={rc}) before printing endpoints. stderr:\n"
            f"{open(stderr_file.name).read()[-4000:]}"
        )
    try:
        info = json.loads(first_line)
    except ValueError:
        proc.kill()
        proc.wait()
        pytest.fail(f"first stdout line is not JSON: {first_line!r}")
    missing = {"venue", "rest", "ws_public", "ws_private", "control", "api_key", "api_secret"} - set(info)
    if missing:
        proc.kill()
        proc.wait()
        pytest.fail(f"endpoint JSON lacks {sorted(missing)}: {info}")
    assert info["venue"] == "kraken", info
    return SimProcess(
        venue=info["venue"],
        rest=info["rest"].rstrip("/"),
        ws_public=info["ws_public"],
        ws_private=info["ws_private"],
        control=info["control"].rstrip("/"),
        api_key=info["api_key"],
        api_secret=info["api_secret"],
        proc=proc,
        stderr_path=stderr_file.name,
    )


def _stop_sim(sim: SimProcess) -> int | None:
    if sim.proc.poll() is not None:
        return sim.proc.returncode
    sim.proc.send_signal(signal.SIGINT)
    try:
        return sim.proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        sim.proc.kill()
        sim.proc.wait()
        return None


def _loopback_no_proxy() -> str:
    current = [h for h in os.environ.get("NO_PROXY", os.environ.get("no_proxy", "")).split(",") if h.strip()]
    return ",".join([*current, *(h for h in ("127.0.0.1", "localhost") if h not in current)])


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    s = _start_sim()
    try:
        # requests, aiohttp (trust_env) and websockets (proxy=True by default) honour proxy
        # variables; the clients must talk to the loopback simulator directly
        with pytest.MonkeyPatch.context() as mp:
            no_proxy = _loopback_no_proxy()
            mp.setenv("NO_PROXY", no_proxy)
            mp.setenv("no_proxy", no_proxy)
            yield s
    finally:
        rc = _stop_sim(s)
        tail = s.stderr_tail()
        try:
            os.unlink(s.stderr_path)
        except OSError:
            pass
    assert rc == 0, f"simulator did not exit 0 on SIGINT (rc={rc}); stderr tail:\n{tail}"
