"""A real `redis-server` for the cluster tests and benchmarks: Debian's binary, started on a free
loopback port in its own directory, never a mock (issue 21).

    with RedisServer(tmp_path) as redis:      # appendonly + appendfsync always by default
        redis.url                             # redis://127.0.0.1:<port>/0
        redis.kill()                          # SIGKILL: what a crash loses (nothing with fsync always)
        redis.start()                         # the same port and directory again (AOF replayed)

The server's own log stays in its directory (`redis.log`), read back when it fails to start.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
START_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        appendonly: bool = True,
        appendfsync: str = "always",
    ) -> None:
        if not os.path.exists(REDIS_SERVER):
            raise RuntimeError(
                "redis-server is not installed: the cluster tests need Debian's redis-server "
                "(./scripts/setup.sh test installs it as root; or apt-get install redis-server)"
            )
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def socket_path(self) -> Path:
        """It listens on a Unix socket too (`unix://` URLs); a short path: sun_path holds ~100 bytes."""
        return Path(f"/tmp/bb-redis-{self.port}.sock")

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        args = [
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--logfile", "redis.log",
            "--save", "",  # persistence is the AOF's (or none), never a background RDB fork
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
            "--protected-mode", "yes",
            "--unixsocket", str(self.socket_path), "--unixsocketperm", "700",
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start: {self.log_tail()}")
            if self._answers():
                return
            time.sleep(0.02)  # a child process starting, not test time: nothing else to wait on
        self.kill()
        raise RuntimeError(f"redis-server did not answer within {START_TIMEOUT_S} s: {self.log_tail()}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing flushed beyond what `appendfsync` already wrote."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def log_tail(self, lines: int = 20) -> str:
        log = self.directory / "redis.log"
        if not log.exists():
            return "(no log)"
        return " | ".join(log.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
