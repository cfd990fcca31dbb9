"""The JavaScript client package (`src/brokerbridge/server/static/client/`) under `node --test`,
against a real `brokerbridge serve` on the simulators started here as a user starts it.

The Node test file (tests/js/client.test.mjs) connects, subscribes, trades, and forces reconnects:
an upstream drop (the Kraken simulator's `drop_now` switch), a server that hangs (SIGSTOP: the
client's heartbeat watchdog), and a restart (SIGTERM, then the same command again on the same
port). This test asserts its exit code and shows its report when it fails.

Node ≥ 22 has `WebSocket`; 20.10 to 21 have it behind `--experimental-websocket`, given here.
`scripts/setup.sh test` installs Debian's `nodejs` when `node` is missing, and TypeScript (locked in
tests/js/package-lock.json) with which `tsc --noEmit` checks the package's declarations against
tests/js/types.check.ts — what a TypeScript user writes, and what must not compile.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.serve_process import Serve, start_serve

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
TRADE_KEY = "js-test-trade-key-0123456789"  # market, account, trade
VIEW_KEY = "js-test-view-key-01234567890"  # market, account
NODE_LIMIT_S = 300.0
MIN_NODE = (20, 10)  # WebSocket behind --experimental-websocket; global from 22


def node_command() -> list[str]:
    """`node` with the flags this version needs for `WebSocket`, or a failure saying what to install."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "node is not installed: run ./scripts/setup.sh test (apt-get install nodejs) — Node ≥ 20.10"
        )
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    match = re.match(r"v(\d+)\.(\d+)", version)
    assert match, f"unexpected `node --version`: {version!r}"
    major, minor = int(match[1]), int(match[2])
    if (major, minor) < MIN_NODE:
        pytest.fail(
            f"node {version} is too old for the JavaScript client's tests: they need Node ≥ 20.10 "
            "(WebSocket; Debian 13's nodejs is 20.19, Debian 12's is 18 — install a newer Node.js)"
        )
    return [node, *(["--experimental-websocket"] if major < 22 else [])]


def write_config(directory: Path) -> Path:
    path = directory / "brokerbridge.toml"
    path.write_text(
        f'[primary]\ninstruments_cache_dir = "{directory / "cache"}"\n\n'
        f'[server]\nstate_dir = "{directory / "state"}"\n'
        # A heartbeat a second: the client's watchdog test can use a short silence limit.
        "heartbeat_interval = 1\n\n"
        f'[server.keys.trader]\nkey = "{TRADE_KEY}"\nscopes = ["market", "account", "trade"]\n\n'
        f'[server.keys.viewer]\nkey = "{VIEW_KEY}"\nscopes = ["market", "account"]\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    running = start_serve(write_config(tmp_path))
    yield running
    running.stop()


def test_node_client_against_serve(serve: Serve, tmp_path: Path) -> None:
    command = node_command()
    # What the restart test runs to start serve again: the same command, now on the same port.
    argv = [a for a in serve.process.args]  # type: ignore[union-attr]
    port_at = argv.index("--port") + 1
    argv[port_at] = str(serve.port)
    env = {
        **os.environ,
        "BB_URL": serve.base_url,
        "BB_TRADE_KEY": TRADE_KEY,
        "BB_VIEW_KEY": VIEW_KEY,
        "BB_KRAKEN_SIM": serve.sim_urls["kraken"],
        "BB_SERVE_PID": str(serve.process.pid),
        "BB_SERVE_ARGV": json.dumps(argv),
        "NO_COLOR": "1",
    }
    env.pop("BROKERBRIDGE_CONFIG", None)
    # BROKERBRIDGE_NODE_TESTS=pattern runs only the Node tests whose name matches (while editing).
    only = os.environ.get("BROKERBRIDGE_NODE_TESTS")
    result = subprocess.run(
        [
            *command,
            "--test",
            "--test-reporter=spec",
            *([f"--test-name-pattern={only}"] if only else []),
            str(HERE / "client.test.mjs"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=NODE_LIMIT_S,
    )
    report = result.stdout + result.stderr
    sys.stdout.write(report)
    assert result.returncode == 0, f"node --test failed ({result.returncode}):\n{report}"
    assert re.search(r"^. pass (\d+)", report, re.M) and not re.search(r"^. fail [1-9]", report, re.M)


def test_declarations_compile_with_tsc() -> None:
    tsc = HERE / "node_modules" / "typescript" / "bin" / "tsc"
    if not tsc.is_file():
        pytest.fail(
            "TypeScript is not installed for tests/js: run ./scripts/setup.sh test (npm ci --prefix tests/js)"
        )
    node = node_command()
    result = subprocess.run(
        [node[0], str(tsc), "-p", str(HERE / "tsconfig.json")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, (
        f"tsc found errors in the client's declarations:\n{result.stdout}{result.stderr}"
    )
