"""The `brokerbridge` command line, run as a user runs it: a subprocess, with timeouts."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from brokerbridge.core.events import StreamStatus, decode_event

TIMEOUT = 20.0
CLI = [sys.executable, "-m", "brokerbridge.cli.main"]


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any brokerbridge settings, wide and colourless output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKERBRIDGE_")}
    env.update(COLUMNS="200", NO_COLOR="1", TERM="dumb", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def sim_process() -> Iterator[dict[str, str]]:
    """`brokerbridge sim kraken --port 0` in its own process; yields its endpoints line."""
    proc = subprocess.Popen(
        [*CLI, "sim", "kraken", "--port", "0"],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
        assert ready, "the simulator printed no endpoints line"
        endpoints = json.loads(proc.stdout.readline())
        yield endpoints
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# -- watch ---------------------------------------------------------------------------------------------


def test_watch_json_prints_decodable_events_from_the_embedded_simulator() -> None:
    result = run("watch", "--count", "8", "--json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 8, result.stdout
    events = [decode_event(line) for line in lines]
    assert all(event.venue == "kraken" for event in events)
    assert any(isinstance(event, StreamStatus) for event in events)
    streams = {event.stream for event in events if isinstance(event, StreamStatus)}
    assert "kraken:ticker:BTC/USD" in streams
    assert "SIMULATED" in result.stderr  # the banner: on stderr, so stdout stays JSON lines
    assert "local Kraken simulator" in result.stderr  # says where it connected


def test_watch_text_prints_one_line_per_event() -> None:
    result = run("watch", "--count", "3", "--channel", "ticker", "--symbol", "ETH/USD")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3, result.stdout
    assert all(" kraken " in line for line in lines)
    assert any("ETH/USD" in line for line in lines)


def test_watch_with_a_missing_config_file_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    result = run("watch", "--config", str(missing))
    assert result.returncode == 2
    assert "error:" in result.stderr
    assert "missing.toml" in result.stderr and "does not exist" in result.stderr
    assert "--config" in result.stderr  # the remedy
    assert result.stdout == ""


def test_watch_with_a_key_but_no_secret_exits_2() -> None:
    result = run("watch", "--count", "1", env=clean_env(BROKERBRIDGE_KRAKEN_API_KEY="only-a-key"))
    assert result.returncode == 2
    assert "kraken.api_key is set but kraken.api_secret is missing" in result.stderr


def test_watch_with_an_unknown_channel_exits_2() -> None:
    try:
        # A hang is forever; a start on a loaded machine takes seconds (other tests here: 7-9 s).
        result = run("watch", "--channel", "bogus", "--count", "1", timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail("watch --channel bogus did not exit")
    assert result.returncode == 2
    assert "unknown channel 'bogus'" in result.stderr


# -- doctor --------------------------------------------------------------------------------------------


def test_doctor_against_the_embedded_simulator_passes_every_check() -> None:
    result = run("doctor", "--sim")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8/8 steps passed" in result.stdout
    assert result.stdout.count("✓ pass") == 8
    assert "✗" not in result.stdout


def test_doctor_with_a_wrong_key_exits_1_and_names_the_venue_error(sim_process: dict[str, str]) -> None:
    secret = base64.b64encode(b"not-the-right-secret-" * 3).decode()
    env = clean_env(
        BROKERBRIDGE_KRAKEN_API_KEY="wrong",
        BROKERBRIDGE_KRAKEN_API_SECRET=secret,
        BROKERBRIDGE_KRAKEN_REST_URL=sim_process["rest"],
        BROKERBRIDGE_KRAKEN_WS_URL=sim_process["ws_public"],
        BROKERBRIDGE_KRAKEN_WS_AUTH_URL=sim_process["ws_private"],
    )
    result = run("doctor", "--timeout", "5", "--json", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    steps = {step["step"]: step for step in json.loads(result.stdout)["steps"]}
    assert "EAPI:Invalid key" in steps["private"]["cause"] and steps["private"]["status"] == "fail"
    assert steps["rest"]["status"] == "pass"  # public checks still pass against the real URLs given
    assert steps["ws_public"]["status"] == "pass"
    assert steps["ws_private"]["status"] == "skipped"
    assert "local Kraken simulator" not in result.stderr  # configured URLs: no embedded simulator
    assert secret not in result.stdout + result.stderr


def test_doctor_with_the_simulator_demo_key_passes(sim_process: dict[str, str]) -> None:
    env = clean_env(
        BROKERBRIDGE_KRAKEN_API_KEY=sim_process["api_key"],
        BROKERBRIDGE_KRAKEN_API_SECRET=sim_process["api_secret"],
    )
    result = run(
        "doctor",
        "--kraken-rest-url",
        sim_process["rest"],
        "--kraken-ws-url",
        sim_process["ws_public"],
        "--kraken-ws-auth-url",
        sim_process["ws_private"],
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8/8 steps passed" in result.stdout
    assert sim_process["rest"] in result.stdout
    assert sim_process["api_secret"] not in result.stdout + result.stderr


# -- serve: the venues chosen, simulators named ---------------------------------------------------------


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process `pid` listens on (its sockets' inodes in /proc/net/tcp, state LISTEN)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@contextlib.contextmanager
def serving(*args: str, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], list[str], str]]:
    """`brokerbridge serve ARGS --port 0 --no-login-link` in its own process: (it, the lines it printed
    up to its API docs line, its base URL); terminated on the way out."""
    proc = subprocess.Popen(
        [*CLI, "serve", *args, "--port", "0", "--no-login-link"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        text = ""
        while "API docs:" not in text or not text.endswith("\n"):
            ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
            assert ready, f"serve printed no URLs: {text!r}"
            chunk = os.read(proc.stdout.fileno(), 4096).decode()  # raw: no line hides in a buffer
            assert chunk, f"serve exited: {text!r}"
            text += chunk
        lines = [line.strip() for line in text.splitlines()]
        docs = next(line for line in lines if line.startswith("API docs:"))
        yield proc, lines, docs.split()[-1].removesuffix("/docs")
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_venue_kraken_runs_kraken_alone_marked_simulated(tmp_path: Path) -> None:
    env = clean_env(XDG_STATE_HOME=str(tmp_path / "state"))
    with serving("--venue", "kraken", env=env) as (proc, lines, url):
        assert lines[0] == "brokerbridge serving venues: kraken (SIMULATED)", lines
        with httpx.Client(base_url=url, timeout=TIMEOUT) as http:
            venues = http.get("/api/venues").json()["venues"]
        assert [(v["venue"], v["simulated"], v["credentials"]) for v in venues] == [("kraken", True, False)]
        # The bridge's port and the Kraken simulator's: no Primary simulator runs.
        assert len(listening_ports(proc.pid)) == 2


def test_serve_with_an_unknown_venue_exits_2_naming_the_valid_ones() -> None:
    result = run("serve", "--venue", "kraken", "--venue", "nasdaq", "--port", "0")
    assert result.returncode == 2
    assert "unknown venue 'nasdaq'" in result.stderr and "kraken, primary" in result.stderr
    assert result.stdout == ""


def test_serve_with_a_primary_configured_in_part_exits_2_and_starts_no_simulator(tmp_path: Path) -> None:
    config = tmp_path / "cocos.toml"
    config.write_text('[primary]\nenvironment = "cocos"\n', encoding="utf-8")
    result = run("serve", "--config", str(config), "--port", "0")
    assert result.returncode == 2
    assert "primary.user and primary.password missing" in result.stderr
    assert result.stdout == ""  # nothing served: no venue, no simulator


# -- help ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ((), ("watch", "doctor", "sim")),
        (
            ("watch",),
            (
                "--channel",
                "--symbol",
                "--venue",
                "--depth",
                "--interval",
                "--json",
                "--sim",
                "--count",
                "--config",
                "--kraken-rest-url",
                "--kraken-ws-url",
                "--kraken-ws-auth-url",
                "--log-level",
            ),
        ),
        (
            ("doctor",),
            (
                "--sim",
                "--json",
                "--fix",
                "--env",
                "--venue",
                "--timeout",
                "--config",
                "--kraken-rest-url",
                "--kraken-ws-url",
                "--kraken-ws-auth-url",
            ),
        ),
        (("sim",), ("kraken",)),
        (
            ("sim", "kraken"),
            ("--host", "--port", "--seed", "--tick-ms", "--drop-every", "--stall", "--rest-unavailable"),
        ),
    ],
)
def test_help_lists_every_option(command: tuple[str, ...], options: tuple[str, ...]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0, result.stderr
    for option in options:
        assert option in result.stdout, f"{option} missing from `{' '.join(command)} --help`"
