"""`JournalStore`: the on-disk journal of fills, written before a fill is published.

One SQLite file in WAL mode (stdlib `sqlite3`). A fill's key is the venue's own id —
(venue, scope, exec_id) — so a fill the venue replays (a `snap_trades` snapshot, a REST
reconciliation, a restart of this process) is stored once and therefore published once. `scope`
names the account on the venue (a hash of endpoint and account identity: exec ids are unique per
venue account, and two simulators with the same seed hand out the same ids).

Writes are synchronous on the event loop on purpose: a fill must be durable before anyone sees it,
and a hop to a thread would let a later event overtake it. Fills are rare next to market data; one
commit costs well under a millisecond in WAL mode.

`path=None` or `":memory:"` keeps the journal in memory (tests, throw-away runs).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import msgspec

from brokerbridge.core.config import state_path
from brokerbridge.core.errors import BrokerBridgeError, ConfigError
from brokerbridge.core.events import Fill

logger = logging.getLogger(__name__)

MEMORY = ":memory:"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS fills (
    venue   TEXT NOT NULL,
    scope   TEXT NOT NULL,
    exec_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    ts      REAL NOT NULL,
    body    BLOB NOT NULL,
    PRIMARY KEY (venue, scope, exec_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fills_by_time ON fills (venue, scope, ts);
"""


class JournalError(BrokerBridgeError):
    """The journal file could not be written (disk full, file removed, permissions)."""


def resolve_path(path: str | None) -> str:
    """Where the journal lives: `:memory:` for None/empty, the XDG state directory for the default."""
    if not path or path == MEMORY:
        return MEMORY
    return str(state_path(path))


class JournalStore:
    def __init__(self, path: str | None = None) -> None:
        self.path = resolve_path(path)
        try:
            if self.path != MEMORY:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we commit explicitly, one fill per transaction.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            if self.path != MEMORY:
                mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    logger.warning("journal %s: SQLite refused WAL mode (got %s)", self.path, mode)
            # FULL: a fill acknowledged to a consumer survives a power cut, not only a crash.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"cannot open the executions journal at {self.path}: {exc}",
                remedy="set journal_path (or BROKERBRIDGE_JOURNAL_PATH) to a writable file, "
                "or ':memory:' to keep it in memory",
            ) from None
        self._encoder = msgspec.json.Encoder(decimal_format="string")
        self._decoder = msgspec.json.Decoder(Fill)

    def add_fill(self, scope: str, fill: Fill) -> bool:
        """Store `fill`; True if it was new, False if this venue id was journaled before."""
        try:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO fills (venue, scope, exec_id, order_id, ts, body)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (fill.venue, scope, fill.exec_id, fill.order_id, fill.ts, self._encoder.encode(fill)),
            )
        except sqlite3.Error as exc:
            raise JournalError(
                f"journal {self.path}: could not store fill {fill.exec_id}: {exc}",
                remedy="free disk space or fix the file's permissions; fills are kept in memory meanwhile",
            ) from None
        return cursor.rowcount == 1

    def fills(self, venue: str, scope: str, *, limit: int | None = None) -> list[Fill]:
        """The newest `limit` fills of (venue, scope), oldest first."""
        rows = self._db.execute(
            "SELECT body FROM fills WHERE venue=? AND scope=? ORDER BY ts DESC, exec_id DESC LIMIT ?",
            (venue, scope, -1 if limit is None else limit),
        ).fetchall()
        return [self._decoder.decode(body) for (body,) in reversed(rows)]

    def fills_after(
        self, venue: str, scope: str, *, after: tuple[float, str] | None, limit: int
    ) -> list[Fill]:
        """Up to `limit` fills of (venue, scope) in (time, exec_id) order, after the fill keyed
        `after` (None: from the first)."""
        ts, exec_id = after if after is not None else (float("-inf"), "")
        rows = self._db.execute(
            "SELECT body FROM fills WHERE venue=? AND scope=? AND (ts>? OR (ts=? AND exec_id>?))"
            " ORDER BY ts, exec_id LIMIT ?",
            (venue, scope, ts, ts, exec_id, limit),
        ).fetchall()
        return [self._decoder.decode(body) for (body,) in rows]

    def count(self, venue: str, scope: str) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM fills WHERE venue=? AND scope=?", (venue, scope)
        ).fetchone()
        return int(row[0])

    def journal_mode(self) -> str:
        return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    def close(self) -> None:
        self._db.close()
