"""The executions journal: `JournalStore`, the interface the Bridge and its order service use (a
Protocol), and `SqliteJournalStore`, a single process's on-disk journal of fills (written before a
fill is published) and of the orders the bridge sends (written before the venue sees them). A
cluster's holder keeps the same journal in Redis (io/cluster/journal.py `RedisJournalStore`).

One SQLite file in WAL mode (stdlib `sqlite3`). A fill's key is the venue's own id —
(venue, scope, exec_id) — so a fill the venue replays (a `snap_trades` snapshot, a REST
reconciliation, a restart of this process) is stored once and therefore published once. `scope`
names the account on the venue (a hash of endpoint and account identity: exec ids are unique per
venue account, and two simulators with the same seed hand out the same ids).

Writes are synchronous on the event loop on purpose: a fill must be durable before anyone sees it,
and a hop to a thread would let a later event overtake it. Fills are rare next to market data; one
commit costs well under a millisecond in WAL mode. The one exception, a fill the journal refused
and writes again (`Bridge._rejournal`), runs in a worker thread — the cluster's Redis store can
block for its timeout — so the connection is shared by two threads: every use of it holds the
store's lock (sqlite3's `check_same_thread=False` leaves serializing them to the caller).

Orders (`orders`): one row per (venue, scope, client_order_id), committed before the submit goes
out — the request, its state (`sending` → `accepted` | `unknown` | `rejected`, later `canceled`,
`filled`, …), the venue's order id and the last error. A process killed between the send and the
answer leaves the row `sending`: the next start knows the order may be live, and that its client
order id must never be sent again. Cancels and amends (`order_ops`) are journaled the same way, so a
cancel whose answer never came is carried on after a restart.

Fills are paged by `seq`, the order they were journaled in (per venue and scope): a fill journaled
late with an older venue timestamp (found by a reconciliation read) still comes after a cursor
handed out before it, where a (time, id) cursor skipped it. Journals written before `seq` existed
get it at open, numbered in (time, id) order.

`path=None` or `":memory:"` keeps the journal in memory (tests, throw-away runs).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol

import msgspec

from brokerbridge.core.config import state_path
from brokerbridge.core.errors import BrokerBridgeError, ConfigError
from brokerbridge.core.events import Fill
from brokerbridge.core.orders import OrderRequest

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
    seq     INTEGER,
    PRIMARY KEY (venue, scope, exec_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fills_by_time ON fills (venue, scope, ts);
CREATE TABLE IF NOT EXISTS orders (
    venue           TEXT NOT NULL,
    scope           TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    request         BLOB NOT NULL,
    state           TEXT NOT NULL,
    order_id        TEXT,
    via             TEXT,
    created         REAL NOT NULL,
    updated         REAL NOT NULL,
    error           BLOB,
    PRIMARY KEY (venue, scope, client_order_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS orders_by_state ON orders (venue, scope, state);
-- A cancel or an amend names the order by the venue's id: no scan of every order journaled.
CREATE INDEX IF NOT EXISTS orders_by_venue_id ON orders (venue, scope, order_id);
CREATE TABLE IF NOT EXISTS order_ops (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    venue           TEXT NOT NULL,
    scope           TEXT NOT NULL,
    op              TEXT NOT NULL,
    order_id        TEXT,
    client_order_id TEXT,
    qty             TEXT,
    price           TEXT,
    state           TEXT NOT NULL,
    created         REAL NOT NULL,
    updated         REAL NOT NULL,
    error           BLOB
);
CREATE INDEX IF NOT EXISTS order_ops_by_state ON order_ops (venue, scope, state);
"""
# Order states a process may have left undecided: the venue may hold the order or not.
UNDECIDED = ("sending", "unknown")
OpKind = Literal["cancel", "amend"]
# unknown: an amend whose answer never came (the order's updates on `executions` tell).
OpState = Literal["pending", "done", "failed", "unknown"]


class StoredError(msgspec.Struct, frozen=True, kw_only=True):
    """An error as the journal keeps it: enough to raise the same one again (its wire code)."""

    code: str  # core/errors.py WIRE_ERRORS code ("order_rejected", "invalid_request", …)
    message: str
    remedy: str = ""


class OrderRow(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    scope: str
    client_order_id: str
    request: OrderRequest  # as placed, client_order_id filled in
    state: str
    order_id: str | None  # the venue's id, once known
    via: str | None
    created: float  # wall time the row was written: before the venue saw the order
    updated: float
    error: StoredError | None


class OrderOp(msgspec.Struct, frozen=True, kw_only=True):
    """A cancel or an amend as journaled (before it was sent)."""

    id: int
    venue: str
    scope: str
    op: OpKind
    order_id: str | None  # the venue's id; None while the order is known by its client id only
    client_order_id: str | None
    qty: Decimal | None
    price: Decimal | None
    state: OpState
    created: float
    error: StoredError | None


class JournalError(BrokerBridgeError):
    """The journal file could not be written (disk full, file removed, permissions)."""


def resolve_path(path: str | None) -> str:
    """Where the journal lives: `:memory:` for None/empty, the XDG state directory for the default."""
    if not path or path == MEMORY:
        return MEMORY
    return str(state_path(path))


class JournalStore(Protocol):
    """What the Bridge and its order service need of the executions journal, with one semantics:
    `SqliteJournalStore` (a single process's file) and io/cluster/journal.py `RedisJournalStore`
    (a cluster holder's, every write fenced) both satisfy it, and the same tests run on both
    (tests/cluster/test_journal.py). Calls are synchronous; a failed write raises `JournalError`."""

    path: str  # where the journal lives, as logs and errors may show it (no secret)

    def add_fill(self, scope: str, fill: Fill) -> bool:
        """Store `fill`; True if it was new, False if this venue id was journaled before."""
        ...

    def fills(self, venue: str, scope: str, *, limit: int | None = None) -> list[Fill]:
        """The newest `limit` fills of (venue, scope), oldest first."""
        ...

    def fills_after(self, venue: str, scope: str, *, after: int, limit: int) -> list[tuple[int, Fill]]:
        """Up to `limit` fills after the one numbered `after`, in journal order, with their `seq`."""
        ...

    def add_order(self, scope: str, request: OrderRequest, *, ts: float) -> bool:
        """Write `request` ahead of its submit (state `sending`); False if its client order id was
        journaled before (nothing written)."""
        ...

    def order(self, venue: str, scope: str, client_order_id: str) -> OrderRow | None: ...

    def order_by_venue_id(self, venue: str, scope: str, order_id: str) -> OrderRow | None: ...

    def orders_in(self, venue: str, scope: str, states: Iterable[str]) -> list[OrderRow]: ...

    def update_order(
        self,
        venue: str,
        scope: str,
        client_order_id: str,
        *,
        state: str,
        ts: float,
        order_id: str | None = None,
        via: str | None = None,
        error: StoredError | None = None,
    ) -> None: ...

    def delete_order(self, venue: str, scope: str, client_order_id: str) -> None: ...

    def release_order(self, venue: str, scope: str, client_order_id: str) -> bool: ...

    def add_op(
        self,
        venue: str,
        scope: str,
        op: OpKind,
        *,
        order_id: str | None,
        client_order_id: str | None,
        ts: float,
        qty: Decimal | None = None,
        price: Decimal | None = None,
    ) -> int: ...

    def update_op(
        self,
        op_id: int,
        *,
        state: OpState,
        ts: float,
        order_id: str | None = None,
        error: StoredError | None = None,
    ) -> None: ...

    def ops(
        self, venue: str, scope: str, op: OpKind, *, state: OpState | None = "pending"
    ) -> list[OrderOp]: ...

    def journal_mode(self) -> str:
        """How durable a write is when it returns (SQLite's journal mode; Redis's persistence)."""
        ...

    def close(self) -> None: ...


class SqliteJournalStore:
    """`JournalStore` in one SQLite file (`path`; None or ":memory:" in memory)."""

    def __init__(self, path: str | None = None) -> None:
        self.path = resolve_path(path)
        # One connection, used from the event loop and from `Bridge._rejournal`'s worker thread.
        self._lock = threading.Lock()
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
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"cannot open the executions journal at {self.path}: {exc}",
                remedy="set journal_path (or BROKERBRIDGE_JOURNAL_PATH) to a writable file, "
                "or ':memory:' to keep it in memory",
            ) from None
        self._encoder = msgspec.json.Encoder(decimal_format="string")
        self._decoder = msgspec.json.Decoder(Fill)
        self._request_decoder = msgspec.json.Decoder(OrderRequest)
        self._error_decoder = msgspec.json.Decoder(StoredError)

    def _migrate(self) -> None:
        """Journals written before fills had a `seq`: add it, numbered in the (time, id) order the
        old cursor paged in, so a page boundary handed out before keeps its meaning."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(fills)")}
        if "seq" not in columns:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("ALTER TABLE fills ADD COLUMN seq INTEGER")
                rows = self._db.execute(
                    "SELECT venue, scope, exec_id FROM fills ORDER BY venue, scope, ts, exec_id"
                ).fetchall()
                numbered: list[tuple[int, str, str, str]] = []
                last: tuple[str, str] | None = None
                seq = 0
                for venue, scope, exec_id in rows:
                    seq = 1 if (venue, scope) != last else seq + 1
                    last = (venue, scope)
                    numbered.append((seq, venue, scope, exec_id))
                self._db.executemany(
                    "UPDATE fills SET seq=? WHERE venue=? AND scope=? AND exec_id=?", numbered
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            logger.info("journal %s: %d fills numbered for paging (seq)", self.path, len(rows))
        self._db.execute("CREATE INDEX IF NOT EXISTS fills_by_seq ON fills (venue, scope, seq)")

    def add_fill(self, scope: str, fill: Fill) -> bool:
        """Store `fill`; True if it was new, False if this venue id was journaled before."""
        try:
            with self._lock:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO fills (venue, scope, exec_id, order_id, ts, body, seq)"
                    " VALUES (?, ?, ?, ?, ?, ?,"
                    " (SELECT COALESCE(MAX(seq), 0) + 1 FROM fills WHERE venue=? AND scope=?))",
                    (
                        fill.venue,
                        scope,
                        fill.exec_id,
                        fill.order_id,
                        fill.ts,
                        self._encoder.encode(fill),
                        fill.venue,
                        scope,
                    ),
                )
        except sqlite3.Error as exc:
            raise JournalError(
                f"journal {self.path}: could not store fill {fill.exec_id}: {exc}",
                remedy="free disk space or fix the file's permissions; fills are kept in memory meanwhile",
            ) from None
        return cursor.rowcount == 1

    def fills(self, venue: str, scope: str, *, limit: int | None = None) -> list[Fill]:
        """The newest `limit` fills of (venue, scope), oldest first."""
        rows = self._query(
            "SELECT body FROM fills WHERE venue=? AND scope=? ORDER BY ts DESC, exec_id DESC LIMIT ?",
            (venue, scope, -1 if limit is None else limit),
        )
        return [self._decoder.decode(body) for (body,) in reversed(rows)]

    def fills_after(self, venue: str, scope: str, *, after: int, limit: int) -> list[tuple[int, Fill]]:
        """Up to `limit` fills of (venue, scope) in the order they were journaled, after the one
        numbered `after` (0: from the first), each with its number (`seq`)."""
        rows = self._query(
            "SELECT seq, body FROM fills WHERE venue=? AND scope=? AND seq>? ORDER BY seq LIMIT ?",
            (venue, scope, after, limit),
        )
        return [(int(seq), self._decoder.decode(body)) for seq, body in rows]

    # -- orders ------------------------------------------------------------------------------------
    def add_order(self, scope: str, request: OrderRequest, *, ts: float) -> bool:
        """Write `request` ahead of its submit (state `sending`); False if its client order id was
        journaled before (nothing written). Committed (synchronous=FULL) when this returns."""
        assert request.client_order_id is not None
        cursor = self._write(
            f"could not journal order {request.client_order_id} before sending it",
            "INSERT OR IGNORE INTO orders (venue, scope, client_order_id, request, state, created, updated)"
            " VALUES (?, ?, ?, ?, 'sending', ?, ?)",
            (request.venue, scope, request.client_order_id, self._encoder.encode(request), ts, ts),
        )
        return cursor.rowcount == 1

    def order(self, venue: str, scope: str, client_order_id: str) -> OrderRow | None:
        rows = self._order_rows("client_order_id=?", (venue, scope, client_order_id))
        return rows[0] if rows else None

    def order_by_venue_id(self, venue: str, scope: str, order_id: str) -> OrderRow | None:
        rows = self._order_rows("order_id=?", (venue, scope, order_id))
        return rows[-1] if rows else None

    def orders_in(self, venue: str, scope: str, states: Iterable[str]) -> list[OrderRow]:
        wanted = tuple(states)
        marks = ",".join("?" * len(wanted))
        return self._order_rows(f"state IN ({marks})", (venue, scope, *wanted))

    def _order_rows(self, where: str, args: tuple[object, ...]) -> list[OrderRow]:
        rows = self._query(
            "SELECT venue, scope, client_order_id, request, state, order_id, via, created, updated, error"
            f" FROM orders WHERE venue=? AND scope=? AND {where} ORDER BY created",
            args,
        )
        return [
            OrderRow(
                venue=venue,
                scope=scope,
                client_order_id=cid,
                request=self._request_decoder.decode(request),
                state=state,
                order_id=order_id,
                via=via,
                created=created,
                updated=updated,
                error=None if error is None else self._error_decoder.decode(error),
            )
            for venue, scope, cid, request, state, order_id, via, created, updated, error in rows
        ]

    def update_order(
        self,
        venue: str,
        scope: str,
        client_order_id: str,
        *,
        state: str,
        ts: float,
        order_id: str | None = None,
        via: str | None = None,
        error: StoredError | None = None,
    ) -> None:
        """Set the row's state (and the venue's id, how it went, the error, where given)."""
        self._write(
            f"could not record the outcome of order {client_order_id}",
            "UPDATE orders SET state=?, updated=?, order_id=COALESCE(?, order_id), via=COALESCE(?, via),"
            " error=COALESCE(?, error) WHERE venue=? AND scope=? AND client_order_id=?",
            (
                state,
                ts,
                order_id,
                via,
                None if error is None else self._encoder.encode(error),
                venue,
                scope,
                client_order_id,
            ),
        )

    def delete_order(self, venue: str, scope: str, client_order_id: str) -> None:
        """Forget a row whose order never left (refused on the way out): its id is free again."""
        self._write(
            f"could not free client order id {client_order_id}",
            "DELETE FROM orders WHERE venue=? AND scope=? AND client_order_id=?",
            (venue, scope, client_order_id),
        )

    def release_order(self, venue: str, scope: str, client_order_id: str) -> bool:
        """Free the id of an order known never to have reached the venue (refused before anything
        was written): its row goes, only while it is undecided and has no venue id. True if it
        went. (`RedisJournalStore` also lets a holder whose lease is gone release its own rows.)"""
        cursor = self._write(
            f"could not free client order id {client_order_id}",
            "DELETE FROM orders WHERE venue=? AND scope=? AND client_order_id=?"
            " AND state IN ('sending', 'unknown') AND order_id IS NULL",
            (venue, scope, client_order_id),
        )
        return cursor.rowcount == 1

    def add_op(
        self,
        venue: str,
        scope: str,
        op: OpKind,
        *,
        order_id: str | None,
        client_order_id: str | None,
        ts: float,
        qty: Decimal | None = None,
        price: Decimal | None = None,
    ) -> int:
        """Journal a cancel or an amend (state `pending`) before it is sent; returns its id."""
        cursor = self._write(
            f"could not journal the {op} of order {order_id or client_order_id}",
            "INSERT INTO order_ops (venue, scope, op, order_id, client_order_id, qty, price, state,"
            " created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
            (
                venue,
                scope,
                op,
                order_id,
                client_order_id,
                None if qty is None else str(qty),
                None if price is None else str(price),
                ts,
                ts,
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def update_op(
        self,
        op_id: int,
        *,
        state: OpState,
        ts: float,
        order_id: str | None = None,
        error: StoredError | None = None,
    ) -> None:
        self._write(
            f"could not record the outcome of order operation {op_id}",
            "UPDATE order_ops SET state=?, updated=?, order_id=COALESCE(?, order_id),"
            " error=COALESCE(?, error) WHERE id=?",
            (state, ts, order_id, None if error is None else self._encoder.encode(error), op_id),
        )

    def ops(self, venue: str, scope: str, op: OpKind, *, state: OpState | None = "pending") -> list[OrderOp]:
        """The cancels or amends of (venue, scope) in `state` (None: all), oldest first."""
        rows = self._query(
            "SELECT id, op, order_id, client_order_id, qty, price, state, created, error FROM order_ops"
            " WHERE venue=? AND scope=? AND op=? AND (? IS NULL OR state=?) ORDER BY id",
            (venue, scope, op, state, state),
        )
        return [
            OrderOp(
                id=op_id,
                venue=venue,
                scope=scope,
                op=kind,
                order_id=order_id,
                client_order_id=cid,
                qty=None if qty is None else Decimal(qty),
                price=None if price is None else Decimal(price),
                state=state,
                created=created,
                error=None if error is None else self._error_decoder.decode(error),
            )
            for op_id, kind, order_id, cid, qty, price, state, created, error in rows
        ]

    def _query(self, sql: str, args: tuple[object, ...]) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _write(self, what: str, sql: str, args: tuple[object, ...]) -> sqlite3.Cursor:
        try:
            with self._lock:
                return self._db.execute(sql, args)
        except sqlite3.Error as exc:
            raise JournalError(
                f"journal {self.path}: {what}: {exc}",
                remedy="free disk space or fix the journal file's permissions; "
                "no order is sent that the journal could not record first",
            ) from None

    def journal_mode(self) -> str:
        with self._lock:
            return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
