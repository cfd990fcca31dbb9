"""Run `brokerbridge` as a user does (a subprocess with a clean environment), and the simulators as
separate processes, for the hardening tests. Distinctive secrets make leaks easy to find."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

CLI = [sys.executable, "-m", "brokerbridge.cli.main"]
TIMEOUT = 60.0

# Distinctive values: if one of them shows up in any output, it leaked.
KRAKEN_KEY = "KRAKEN-KEY-7f3e9d-LEAKCHECK"
KRAKEN_SECRET = base64.b64encode(b"KRAKEN-SECRET-4b1d9a-LEAKCHECK-padding-padding").decode()
PRIMARY_PASSWORD = "PRIMARY-PASSWORD-8c2f7e-LEAKCHECK"
CLIENT_KEY = "CLIENT-KEY-5e8a1c-LEAKCHECK-0123456789"
SECRETS = (KRAKEN_SECRET, PRIMARY_PASSWORD, CLIENT_KEY)


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without brokerbridge settings; wide, colourless output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKERBRIDGE_")}
    env.update(COLUMNS="200", NO_COLOR="1", TERM="dumb", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def run(*args: str, timeout: float = TIMEOUT, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=clean_env(), capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd
    )


def leaks(text: str, secrets: tuple[str, ...] = SECRETS) -> list[str]:
    """The secrets (shown by a prefix only) that appear in `text`."""
    return [secret[:12] + "…" for secret in secrets if secret in text]


def one_line(text: str) -> str:
    """Output with rich's line wrapping undone, to search for a message."""
    return " ".join(text.split())


class Process:
    """A running `brokerbridge` command whose stdout and stderr are drained by threads (a full pipe
    would block it; `select` on a buffered pipe would miss lines already read ahead)."""

    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        self.popen = subprocess.Popen(
            [*CLI, *args], env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._out: list[str] = []
        self._err: list[str] = []
        self._readers = [
            threading.Thread(target=self._drain, args=(self.popen.stdout, self._out, True), daemon=True),
            threading.Thread(target=self._drain, args=(self.popen.stderr, self._err, False), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _drain(self, pipe: IO[str] | None, into: list[str], lines: bool) -> None:
        assert pipe is not None
        for line in pipe:
            into.append(line)
            if lines:
                self._lines.put(line)

    def read_line(self, timeout: float = TIMEOUT) -> str:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.popen.args} printed nothing within {timeout} s") from None

    def stop(self) -> tuple[int, str, str]:
        """SIGINT (Ctrl-C), then exit status, stdout and stderr."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        for reader in self._readers:
            reader.join(10)
        return self.popen.returncode, "".join(self._out), "".join(self._err)


@contextlib.contextmanager
def process(*args: str, cwd: Path | None = None) -> Iterator[Process]:
    proc = Process(*args, cwd=cwd)
    try:
        yield proc
    finally:
        proc.stop()


@contextlib.contextmanager
def simulator(venue: str) -> Iterator[dict[str, Any]]:
    """`brokerbridge sim <venue> --port 0` in its own process; yields its endpoints line."""
    with process("sim", venue, "--port", "0") as proc:
        endpoints: dict[str, Any] = json.loads(proc.read_line())
        yield endpoints


def toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string
