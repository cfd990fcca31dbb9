"""The files browser logins keep across restarts of `serve`, in `[server] state_dir`: the key that
signs login cookies and the ids of signed-out logins (the `LoginStore` of server/logins.py).

The file names keep the word the user sees ("session"): renaming them would sign everyone out.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from brokerbridge.core.config import state_path
from brokerbridge.core.errors import ConfigError

logger = logging.getLogger(__name__)


class StateDir:
    """`[server] state_dir`: `session-key` (the signing key, 0600, made on first need) and
    `signed-out-sessions.json`. Deleting the key file signs every browser out."""

    def __init__(self, path: str | Path) -> None:
        self.path = state_path(str(path))  # the default honours $XDG_STATE_HOME, like the journal
        self._key: bytes | None = None

    @property
    def key_file(self) -> Path:
        return self.path / "session-key"

    @property
    def revoked_file(self) -> Path:
        return self.path / "signed-out-sessions.json"

    def signing_key(self, *, create: bool) -> bytes | None:
        if self._key is None:
            try:
                self._key = self._read_key() if self.key_file.exists() or not create else self._make_key()
            except OSError as exc:
                raise ConfigError(
                    f"cannot use the session key in {self.path}: {exc.strerror or exc}",
                    remedy="set server.state_dir (BROKERBRIDGE_SERVER_STATE_DIR) to a directory this "
                    "user may write",
                ) from None
        return self._key

    def _read_key(self) -> bytes | None:
        try:
            info = self.key_file.stat()
        except FileNotFoundError:
            return None
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{self.key_file} is readable by other users: anyone who can read it can forge sessions",
                remedy=f"chmod 600 {self.key_file} (or delete it, which signs every session out)",
            )
        text = self.key_file.read_text(encoding="ascii", errors="replace").strip()
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) < 32:
            raise ConfigError(
                f"{self.key_file} does not hold a session key written by brokerbridge",
                remedy="delete it; a new one is made (every session is signed out)",
            )
        return key

    def _make_key(self) -> bytes:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        try:
            fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            made = self._read_key()
            assert made is not None
            return made
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(key.hex() + "\n")
        logger.info("made a new session signing key in %s", self.path)
        return key

    def load_revoked(self) -> dict[str, float]:
        try:
            data = json.loads(self.revoked_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot read {self.revoked_file}: {exc}",
                remedy="delete it together with session-key (every session is signed out)",
            ) from None
        if not isinstance(data, dict):
            raise ConfigError(
                f"{self.revoked_file} is not a JSON object",
                remedy="delete it together with session-key (every session is signed out)",
            )
        return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}

    def save_revoked(self, revoked: Mapping[str, float]) -> None:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = self.revoked_file.with_suffix(".tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(dict(revoked), file)
        os.replace(partial, self.revoked_file)
