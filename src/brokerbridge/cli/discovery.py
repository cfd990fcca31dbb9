"""`serve`'s discovery file: how the other commands on this machine find the running server.

`brokerbridge serve` writes `serve.json` in `[server] state_dir` once it listens — its URL, pid and
start time, never a secret — and removes it when it stops cleanly. `watch`, `doctor`,
`instruments`, `status` and `login-link` read it to attach to that server instead of opening venue
sessions of their own (a second Primary login with the same user revokes the first one's token).

The file is written whole or not at all (a temporary file renamed over it), so a reader never sees
half of one. A file whose process is gone (`serve` was killed, the machine rebooted) is stale: it
is ignored, and removed when found. Several `serve`s sharing one state_dir: the last one started is
found, and each removes the file only while it is its own.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import msgspec

from brokerbridge.core.config import state_path

FILE_NAME = "serve.json"


class Discovery(msgspec.Struct, frozen=True, kw_only=True):
    url: str  # http://host:port of the running server, an address this machine can connect to
    pid: int
    started_at: float  # wall time
    version: str = ""


def discovery_file(state_dir: str) -> Path:
    return state_path(state_dir) / FILE_NAME


def local_url(host: str, port: int) -> str:
    """An address to reach a server bound to `host`: a wildcard bind (all interfaces) is reached
    on loopback."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host in ("::", "[::]"):
        host = "::1"
    host = host.strip("[]")
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def write(path: Path, found: Discovery) -> None:
    """Write `found` to `path` atomically (readers see the old file or the new one, never a part)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(msgspec.json.encode(found) + b"\n")
    os.replace(partial, path)


def remove(path: Path, pid: int) -> None:
    """Remove `path` if it is still the file of process `pid` (a later `serve` may have replaced it)."""
    found = _decode(path)
    if found is not None and found.pid == pid:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def read(path: Path) -> Discovery | None:
    """The running server `path` names; None when there is none, or the file is stale (its process
    is gone: the file is removed) or not one `serve` wrote."""
    found = _decode(path)
    if found is None:
        return None
    if not pid_alive(found.pid):
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    return found


def _decode(path: Path) -> Discovery | None:
    try:
        return msgspec.json.decode(path.read_bytes(), type=Discovery)
    except (OSError, msgspec.DecodeError):
        return None


def pid_alive(pid: int) -> bool:
    """A process `pid` exists (signal 0 checks without sending anything)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, run by another user
        return True
    return True
