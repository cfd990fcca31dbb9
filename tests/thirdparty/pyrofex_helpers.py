"""Fixtures and helpers for the pyRofex fidelity suite (``test_pyrofex.py``).

Kept out of ``tests/thirdparty/conftest.py`` (the Kraken suite's); ``test_pyrofex.py`` imports the
fixtures from here. The Primary simulator is started as a user would start it:
``python -m brokerbridge.cli.main sim primary --port 0 --seed 7``; the first stdout line is the
endpoint JSON; on teardown the process gets SIGINT and must exit 0.

pyRofex keeps module-level state (``pyRofex.components.globals``): the per-environment config
dicts and the default environment. Its REST/WS client objects hold references to those very
dicts, so ``pyrofex_state`` snapshots them and restores them *in place* at teardown, after closing
every WebSocket the tests opened (pyRofex runs websocket-client in a non-daemon thread).
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
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import pytest
import requests

STARTUP_TIMEOUT_S = 30.0
SHUTDOWN_TIMEOUT_S = 15.0
# websocket-client's Dispatcher notices close() only when its 10 s select() times out
# (websocket/_app.py create_dispatcher: `timeout = ping_timeout or 10`), so joining takes up to 10 s.
WS_JOIN_TIMEOUT_S = 11.0

pyRofex = pytest.importorskip("pyRofex")
from pyRofex.components import globals as rofex_globals  # noqa: E402


# ------------------------------------------------------------------------------------------------
# simulator process
# ------------------------------------------------------------------------------------------------
@dataclass
class PrimarySim:
    rest: str
    ws: str
    control: str | None
    user: str
    password: str
    account: str
    info: dict[str, Any]
    proc: subprocess.Popen[str] = field(repr=False)
    stderr_path: str = field(repr=False)

    def faults(self, **switches: Any) -> dict[str, Any]:
        """POST {control}/faults with the given switches (GET when none); returns the switch state."""
        assert self.control, "the simulator's endpoint JSON has no `control` URL"
        base = self.control.rstrip("/") + "/faults"
        if switches:
            resp = requests.post(base, json=switches, timeout=5)
        else:
            resp = requests.get(base, timeout=5)
        assert resp.status_code == 200, (resp.status_code, resp.text)
        return resp.json()

    def reset_faults(self) -> None:
        assert self.control, "the simulator's endpoint JSON has no `control` URL"
        resp = requests.post(self.control.rstrip("/") + "/faults/reset", json={}, timeout=5)
        assert resp.status_code == 200, (resp.status_code, resp.text)

    def stderr_tail(self, n: int = 4000) -> str:
        try:
            with open(self.stderr_path, encoding="utf-8", errors="replace") as fh:
                return fh.read()[-n:]
        except OSError:
            return ""


def loopback_no_proxy() -> str:
    current = [h for h in os.environ.get("NO_PROXY", os.environ.get("no_proxy", "")).split(",") if h.strip()]
    return ",".join([*current, *(h for h in ("127.0.0.1", "localhost") if h not in current)])


def start_primary_sim(seed: int = 7) -> PrimarySim:
    stderr_file = tempfile.NamedTemporaryFile(prefix="bb-sim-primary-", suffix=".stderr", delete=False)
    env = dict(os.environ)
    env["NO_PROXY"] = env["no_proxy"] = loopback_no_proxy()
    proc = subprocess.Popen(
        [sys.executable, "-m", "brokerbridge.cli.main", "sim", "primary", "--port", "0", "--seed", str(seed)],
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

    threading.Thread(target=pump, name="primary-sim-stdout", daemon=True).start()

    def tail() -> str:
        with open(stderr_file.name, encoding="utf-8", errors="replace") as fh:
            return fh.read()[-4000:]

    try:
        first_line = lines.get(timeout=STARTUP_TIMEOUT_S)
    except queue.Empty:
        proc.kill()
        proc.wait()
        pytest.fail(
            f"primary simulator printed no endpoint line within {STARTUP_TIMEOUT_S}s. stderr:\n{tail()}"
        )
    if first_line is None:
        rc = proc.wait()
        pytest.fail(f"primary simulator exited (rc={rc}) before printing endpoints. stderr:\n{tail()}")
    try:
        info = json.loads(first_line)
    except ValueError:
        proc.kill()
        proc.wait()
        pytest.fail(f"first stdout line is not JSON: {first_line!r}")
    missing = {"venue", "rest", "ws", "user", "password", "account"} - set(info)
    if missing:
        proc.kill()
        proc.wait()
        pytest.fail(f"endpoint JSON lacks {sorted(missing)}: {info}")
    assert info["venue"] == "primary", info
    return PrimarySim(
        rest=info["rest"],
        ws=info["ws"],
        control=info.get("control"),
        user=str(info["user"]),
        password=str(info["password"]),
        account=str(info["account"]),
        info=info,
        proc=proc,
        stderr_path=stderr_file.name,
    )


def stop_primary_sim(sim: PrimarySim) -> int | None:
    if sim.proc.poll() is not None:
        return sim.proc.returncode
    sim.proc.send_signal(signal.SIGINT)
    try:
        return sim.proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        sim.proc.kill()
        sim.proc.wait()
        return None


@pytest.fixture(scope="module")
def primary_sim() -> Iterator[PrimarySim]:
    s = start_primary_sim()
    try:
        with pytest.MonkeyPatch.context() as mp:
            no_proxy = loopback_no_proxy()
            mp.setenv("NO_PROXY", no_proxy)
            mp.setenv("no_proxy", no_proxy)
            yield s
    finally:
        rc = stop_primary_sim(s)
        tail = s.stderr_tail()
        try:
            os.unlink(s.stderr_path)
        except OSError:
            pass
    assert rc == 0, f"primary simulator did not exit 0 on SIGINT (rc={rc}); stderr tail:\n{tail}"


# ------------------------------------------------------------------------------------------------
# pyRofex global state
# ------------------------------------------------------------------------------------------------
_closing_threads: list[threading.Thread] = []


def close_ws_client(client: Any, join: bool = False) -> None:
    """Close a pyRofex WebSocketClient (if it ever connected).

    Its non-daemon thread lingers up to 10 s after close() (see WS_JOIN_TIMEOUT_S); it is joined
    here if ``join`` else at ``pyrofex_state`` teardown, so tests don't each pay that wait.
    """
    if client is None:
        return
    try:
        if client.ws_connection is not None:
            client.close_connection()
    except Exception:  # teardown must go on
        pass
    thread = getattr(client, "ws_thread", None)
    if thread is not None:
        if join:
            thread.join(WS_JOIN_TIMEOUT_S)
        else:
            _closing_threads.append(thread)


def join_closed_clients(timeout: float = WS_JOIN_TIMEOUT_S) -> list[threading.Thread]:
    """Join the threads of closed clients (shared deadline); returns those still alive."""
    deadline = time.monotonic() + timeout
    while _closing_threads:
        thread = _closing_threads.pop()
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            return [thread, *_closing_threads]
    return []


@pytest.fixture(scope="module")
def pyrofex_state() -> Iterator[None]:
    """Snapshot pyRofex's module-level config; close sockets and restore it in place at teardown."""
    saved_default = rofex_globals.default_environment
    saved = {env: dict(cfg) for env, cfg in rofex_globals.environment_config.items()}
    try:
        yield
    finally:
        for env, cfg in rofex_globals.environment_config.items():
            ws_client = cfg.get("ws_client")
            if ws_client is not None and ws_client is not saved.get(env, {}).get("ws_client"):
                close_ws_client(ws_client)
        join_closed_clients()
        for env, cfg in rofex_globals.environment_config.items():
            cfg.clear()
            cfg.update(saved.get(env, {}))
        rofex_globals.default_environment = saved_default


# ------------------------------------------------------------------------------------------------
# callback recorder
# ------------------------------------------------------------------------------------------------
class Recorder:
    """Thread-safe sink for pyRofex handler calls (they run on the websocket thread)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._cond = threading.Condition()
        self._items: list[Any] = []

    def handle(self, msg: Any) -> None:  # bound method: pyRofex's getfullargspec check sees args
        with self._cond:
            self._items.append(msg)
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def items(self, start: int = 0) -> list[Any]:
        with self._cond:
            return list(self._items[start:])

    def wait_for(self, pred: Callable[[Any], bool], timeout: float, start: int = 0) -> Any | None:
        """First item at index >= start satisfying pred, waiting up to timeout seconds."""
        deadline = time.monotonic() + timeout
        idx = start
        with self._cond:
            while True:
                while idx < len(self._items):
                    item = self._items[idx]
                    idx += 1
                    try:
                        if pred(item):
                            return item
                    except (KeyError, TypeError, AttributeError):
                        pass
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def wait_count(self, pred: Callable[[Any], bool], n: int, timeout: float, start: int = 0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = []
            for item in self.items(start):
                try:
                    if pred(item):
                        found.append(item)
                except (KeyError, TypeError, AttributeError):
                    pass
            if len(found) >= n or time.monotonic() >= deadline:
                return found
            with self._cond:
                self._cond.wait(min(0.2, max(0.0, deadline - time.monotonic())))


def poll_until(
    fn: Callable[[], Any], pred: Callable[[Any], bool], timeout: float, interval: float = 0.2
) -> Any:
    """Call fn until pred(result) or timeout; returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        try:
            if pred(result):
                return result
        except (KeyError, TypeError, AttributeError, IndexError):
            pass
        if time.monotonic() >= deadline:
            return result
        time.sleep(interval)


# ------------------------------------------------------------------------------------------------
# prices
# ------------------------------------------------------------------------------------------------
def tick_of(detail: dict[str, Any]) -> Decimal:
    tick = detail.get("minPriceIncrement")
    if not tick:
        ranges = detail.get("tickPriceRanges") or {}
        first = ranges.get("0") if isinstance(ranges, dict) else None
        tick = (first or {}).get("tick") or 0.01
    return Decimal(str(tick))


def on_tick(price: float, tick: Decimal, up: bool) -> float:
    """Round price to a multiple of tick (ceil if up else floor), as a float pyRofex prints."""
    steps = (Decimal(str(price)) / tick).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
    return float(steps * tick)
