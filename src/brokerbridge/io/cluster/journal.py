"""`RedisJournalStore`: the executions journal of a cluster's venue holder, in Redis (issue 21;
docs/cluster.md "Orders and the journal").

The `JournalStore` Protocol (io/journal_store.py) with the semantics of `SqliteJournalStore` (the
file a single process keeps), so the holder's `Bridge` and its order service run unchanged on it: fills
idempotent by (venue, account scope, execution id) and paged by `seq`, the order they were
journaled in; orders written ahead of their submit, keyed by client order id; cancels and amends
journaled before they are sent. A new holder restores from it, so it neither loses nor republishes
a fill, and a client order id another holder used is never sent again.

Synchronous, like SQLite's: the Bridge calls it on the event loop, on purpose (a fill must be
durable before anyone sees it, and a hop to a thread would let a later event overtake it). A
loopback round trip is ~0.1 ms and only fills and order writes go out, which are rare next to
market data. Timeouts are the link's (io/cluster/link.py: 1 s, one retry of a broken connection).

The fill and its stream entry are one write. Opened with `stream_maxlen` (a holder's store), the
script that journals a new fill also XADDs it to the venue's executions stream — the entry
`codec.encode_entry` makes (writer `journal`, numbered by the fill's `seq`), `MAXLEN ~
stream_maxlen` as the publisher trims — and the holder's `EventPublisher` skips fills. A holder
that loses its lease, or dies, right after the journal's write has therefore streamed the fill
too: no fill is journaled and not streamed, none streamed and not journaled. A fill the journal
refused (Redis away) is streamed when a later try journals it (`Bridge._rejournal`), once.

Every write is ONE Lua script behind the fence (io/cluster/fencing.py): the lease must still hold
this holder's token, or nothing is written and `Fenced` is raised — save one: `release_order`, which
frees only a row this token wrote ahead and never sent (a fact about its own attempt). A write whose
answer was lost (a connection reset after the script ran) is retried by the link; the writes that
answer "new or not" (`add_fill`, `add_order`) and `add_op` (which answers an id) carry a nonce, kept
a minute, so a retry of a write that did land answers as the first attempt would have, never
"journaled before" (which would drop a fill unpublished).

Keys (`ClusterKeys.journal(venue, scope, part)`, all under the venue's hash tag):

    fills                 hash   exec_id → the fill (msgspec JSON)
    fills:seq             zset   exec_id scored by seq (the journal's order; `fills_after`)
    fills:ts              zset   exec_id scored by ts (`fills`: newest N, ties by exec_id)
    fills:n               string the last seq handed out
    order:<cid>           hash   request, state, order_id, via, created, updated, error, by (the
                                 token that wrote it ahead: `release_order`)
    orders:<state>        zset   cid scored by created (`orders_in`)
    vid:<order_id>        zset   cid scored by created (`order_by_venue_id`: the latest row)
    ops:<op>[:<state>]    zset   op ids (`ops`)
    w:<nonce>             string a write that landed (PX 60 s): its retry answers the same
    and, with `stream_maxlen`, each new fill's entry in the venue's executions stream
    (`ClusterKeys.events(venue, "<venue>:executions")`, the publisher's stream)
    and per venue (op ids are the venue's, as `update_op` names an op by id alone):
    journal:op:n          string the last op id;   journal:op:<id>  hash  the op's row

Floats (times) are written as `repr` and read back exactly; Decimals as their text.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypeVar, cast

import msgspec
import redis
from redis.commands.core import Script

from brokerbridge.core.errors import Fenced
from brokerbridge.core.events import Fill
from brokerbridge.core.orders import OrderRequest
from brokerbridge.core.secret import Secret
from brokerbridge.core.topics import topic_of
from brokerbridge.io.cluster.codec import JOURNAL_WRITER, SEQ_FIELD, encode_entry
from brokerbridge.io.cluster.fencing import SyncFencedScript, fenced_script, parse_token
from brokerbridge.io.cluster.keys import ClusterKeys, describe_url
from brokerbridge.io.cluster.link import UNREACHABLE, sync_redis
from brokerbridge.io.journal_store import JournalError, OpKind, OpState, OrderOp, OrderRow, StoredError

logger = logging.getLogger(__name__)

T = TypeVar("T")
# How long a landed write's nonce is kept: far longer than a retry takes (one, within a second).
NONCE_MS = 60_000
_ORDER_FIELDS = ("request", "state", "order_id", "via", "created", "updated", "error")
_OP_FIELDS = ("scope", "op", "order_id", "client_order_id", "qty", "price", "state", "created", "error")
# The fields as a Lua argument list, for the read scripts' HMGET.
_ORDER_LUA = ", ".join(repr(name) for name in _ORDER_FIELDS)
_OP_LUA = ", ".join(repr(name) for name in _OP_FIELDS)

# KEYS: lease, fills, fills:seq, fills:ts, fills:n, w:<nonce>[, the executions stream];
# ARGV: token, exec_id, body, ts[, maxlen, the entry's fields and values (codec.encode_entry)].
# With a stream, the new fill's entry (numbered `s` = its seq) is added FIRST: a script is not
# rolled back by an error, and an XADD refused (a foreign key of another type) must leave no fill
# journaled unstreamed — a retry would find it "journaled before" and no client would get it. A
# retry of a write that landed (its nonce found) adds nothing: the first attempt streamed it.
_ADD_FILL = f"""
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then
  return redis.call('EXISTS', KEYS[6])
end
local seq = tonumber(redis.call('GET', KEYS[5]) or '0') + 1
if KEYS[7] then
  local entry = {{KEYS[7], 'MAXLEN', '~', ARGV[5], '*'}}
  for i = 6, #ARGV do entry[#entry + 1] = ARGV[i] end
  entry[#entry + 1] = '{SEQ_FIELD.decode()}'
  entry[#entry + 1] = tostring(seq)
  redis.call('XADD', unpack(entry))
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('SET', KEYS[5], tostring(seq))
redis.call('ZADD', KEYS[3], seq, ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[2])
redis.call('SET', KEYS[6], 1, 'PX', {NONCE_MS})
return 1
"""
# KEYS: lease, order:<cid>, orders:sending, w:<nonce>; ARGV: token, request, ts, cid.
_ADD_ORDER = f"""
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.call('EXISTS', KEYS[4])
end
redis.call('HSET', KEYS[2], 'request', ARGV[2], 'state', 'sending', 'created', ARGV[3], 'updated', ARGV[3],
  'by', ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
redis.call('SET', KEYS[4], 1, 'PX', {NONCE_MS})
return 1
"""
# KEYS: lease, order:<cid>; ARGV: token, scope prefix, cid, state, ts, order_id, via, error
# ('' for "unchanged", as SQLite's COALESCE). An order the venue renamed (an amend that replaced
# it) is found by its new id only, as the SQLite row's order_id column is overwritten.
_UPDATE_ORDER = """
local old = redis.call('HMGET', KEYS[2], 'state', 'created', 'order_id')
if not old[1] then return 0 end
if old[1] ~= ARGV[4] then
  redis.call('ZREM', ARGV[2] .. 'orders:' .. old[1], ARGV[3])
  redis.call('ZADD', ARGV[2] .. 'orders:' .. ARGV[4], old[2], ARGV[3])
end
redis.call('HSET', KEYS[2], 'state', ARGV[4], 'updated', ARGV[5])
if ARGV[6] ~= '' and ARGV[6] ~= old[3] then
  if old[3] then redis.call('ZREM', ARGV[2] .. 'vid:' .. old[3], ARGV[3]) end
  redis.call('ZADD', ARGV[2] .. 'vid:' .. ARGV[6], old[2], ARGV[3])
  redis.call('HSET', KEYS[2], 'order_id', ARGV[6])
end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[2], 'via', ARGV[7]) end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[2], 'error', ARGV[8]) end
return 1
"""
# KEYS: lease, order:<cid>; ARGV: token, scope prefix, cid.
_DELETE_ORDER = """
local old = redis.call('HMGET', KEYS[2], 'state', 'order_id')
if not old[1] then return 0 end
redis.call('ZREM', ARGV[2] .. 'orders:' .. old[1], ARGV[3])
if old[2] then redis.call('ZREM', ARGV[2] .. 'vid:' .. old[2], ARGV[3]) end
redis.call('DEL', KEYS[2])
return 1
"""
# NOT fenced, on purpose. KEYS: order:<cid>; ARGV: scope prefix, cid, token. A row is released
# only by the token that wrote it ahead (`by`), while it is undecided with no venue id: only that
# holder can have sent the order (every other answers the row, never sends it), and it knows it
# did not. So a holder whose lease lapsed before its send still frees the id for its successor.
_RELEASE_ORDER = """
local old = redis.call('HMGET', KEYS[1], 'state', 'order_id', 'by')
if not old[1] or old[2] or old[3] ~= ARGV[3] then return 0 end
if old[1] ~= 'sending' and old[1] ~= 'unknown' then return 0 end
redis.call('ZREM', ARGV[1] .. 'orders:' .. old[1], ARGV[2])
redis.call('DEL', KEYS[1])
return 1
"""
# KEYS: lease, op:n, w:<nonce>; ARGV: token, op row prefix, scope, op, order_id, cid, qty, price,
# ts, index prefix (ops:<op>:). The row keeps its index prefix: `update_op` knows the op by id only.
_ADD_OP = f"""
local landed = redis.call('GET', KEYS[3])
if landed then return tonumber(landed) end
local id = redis.call('INCR', KEYS[2])
local row = ARGV[2] .. id
redis.call('HSET', row, 'scope', ARGV[3], 'op', ARGV[4], 'state', 'pending', 'created', ARGV[9],
  'updated', ARGV[9], 'ix', ARGV[10])
if ARGV[5] ~= '' then redis.call('HSET', row, 'order_id', ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', row, 'client_order_id', ARGV[6]) end
if ARGV[7] ~= '' then redis.call('HSET', row, 'qty', ARGV[7]) end
if ARGV[8] ~= '' then redis.call('HSET', row, 'price', ARGV[8]) end
redis.call('ZADD', string.sub(ARGV[10], 1, -2), id, id)
redis.call('ZADD', ARGV[10] .. 'pending', id, id)
redis.call('SET', KEYS[3], id, 'PX', {NONCE_MS})
return id
"""
# KEYS: lease, op:<id>; ARGV: token, id, state, ts, order_id, error.
_UPDATE_OP = """
local old = redis.call('HMGET', KEYS[2], 'state', 'ix')
if not old[1] then return 0 end
if old[1] ~= ARGV[3] then
  redis.call('ZREM', old[2] .. old[1], ARGV[2])
  redis.call('ZADD', old[2] .. ARGV[3], ARGV[2], ARGV[2])
end
redis.call('HSET', KEYS[2], 'state', ARGV[3], 'updated', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[2], 'order_id', ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[2], 'error', ARGV[6]) end
return 1
"""
# Reads in one script each, so a row and its index are read at one instant (as one SQL query).
# ARGV: scope prefix, states…  → cid, fields, cid, fields…
_ORDERS_IN = f"""
local out = {{}}
for i = 2, #ARGV do
  for _, cid in ipairs(redis.call('ZRANGE', ARGV[1] .. 'orders:' .. ARGV[i], 0, -1)) do
    out[#out + 1] = cid
    out[#out + 1] = redis.call('HMGET', ARGV[1] .. 'order:' .. cid, {_ORDER_LUA})
  end
end
return out
"""
# KEYS: vid:<order_id>; ARGV: scope prefix → cid, fields (the latest row naming the venue id).
_ORDER_BY_VENUE_ID = f"""
local cid = redis.call('ZRANGE', KEYS[1], -1, -1)[1]
if not cid then return false end
return {{cid, redis.call('HMGET', ARGV[1] .. 'order:' .. cid, {_ORDER_LUA})}}
"""
# KEYS: the index; ARGV: op row prefix → id, fields, id, fields…
_OPS = f"""
local out = {{}}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HMGET', ARGV[1] .. id, {_OP_LUA})
end
return out
"""


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def _str(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _opt(value: str | None) -> str:
    """An optional argument as the scripts take it: '' for None (COALESCE's "unchanged")."""
    return "" if value is None else value


class RedisJournalStore:
    """`JournalStore` (io/journal_store.py) on the cluster's Redis, for `venue`'s holder: every
    write fenced by `token` (`Lease.token`, "<node_id> <epoch>")."""

    def __init__(
        self,
        url: Secret | str,
        keys: ClusterKeys,
        venue: str,
        *,
        token: str,
        stream_maxlen: int | None = None,
        client: redis.Redis | None = None,
    ) -> None:
        """`stream_maxlen`: stream each new fill to the venue's executions stream in the same
        write, trimmed to about this many entries (a holder's store: `[cluster] stream_maxlen`);
        None journals only (a store that only reads, tests). `client`: a blocking client to use
        instead of opening one on `url` (it is not closed by `close`)."""
        if stream_maxlen is not None and stream_maxlen < 1:
            raise ValueError(
                f"stream_maxlen must be at least 1 (entries kept per stream), not {stream_maxlen}"
            )
        # The epoch and node the streamed entries carry: the token's (a bad token fails here).
        self._stamp = None if stream_maxlen is None else parse_token(token)
        self._stream_maxlen = stream_maxlen
        self.keys = keys
        self.venue = venue
        self.token = token  # the holder's lease token: a write under any other is refused
        self.path = describe_url(url.reveal() if isinstance(url, Secret) else url)  # as JournalStore's
        self._owns_client = client is None
        self._redis = (
            client
            if client is not None
            else sync_redis(url, name=f"journal-{venue}-{token.replace(' ', '-')}")
        )
        self._lease = keys.lease(venue)
        self._encoder = msgspec.json.Encoder(decimal_format="string")
        self._decoder = msgspec.json.Decoder(Fill)
        self._request_decoder = msgspec.json.Decoder(OrderRequest)
        self._error_decoder = msgspec.json.Decoder(StoredError)
        r = self._redis
        self._add_fill = fenced_script(r, _ADD_FILL)
        self._add_order = fenced_script(r, _ADD_ORDER)
        self._update_order = fenced_script(r, _UPDATE_ORDER)
        self._delete_order = fenced_script(r, _DELETE_ORDER)
        self._add_op = fenced_script(r, _ADD_OP)
        self._update_op = fenced_script(r, _UPDATE_OP)
        self._release_order: Script = r.register_script(_RELEASE_ORDER)
        self._orders_in: Script = r.register_script(_ORDERS_IN)
        self._order_by_venue_id: Script = r.register_script(_ORDER_BY_VENUE_ID)
        self._ops: Script = r.register_script(_OPS)
        for warning in self.durability_warnings():
            logger.warning(
                "%s journal in Redis at %s: %s (the cluster guide: Persistence)", venue, self.path, warning
            )

    # -- plumbing ----------------------------------------------------------------------------------
    def _key(self, scope: str, part: str) -> str:
        return self.keys.journal(self.venue, scope, part)

    def _nonce_key(self, scope: str) -> str:
        return self._key(scope, "w:" + secrets.token_hex(8))

    def _check(self, venue: str) -> None:
        if venue != self.venue:
            raise JournalError(
                f"the journal in Redis at {self.path} is {self.venue}'s holder's: it cannot keep {venue}'s",
                remedy="each venue's holder opens its own RedisJournalStore (a bug if you see this)",
            )

    @contextmanager
    def _errors(self, what: str, remedy: str) -> Iterator[None]:
        """Redis not answering, or answering with an error, as `JournalError` (the fence's
        refusal passes as `Fenced`: the holder must stop, not carry on in memory)."""
        try:
            yield
        except Fenced:
            raise
        except UNREACHABLE as exc:
            raise JournalError(
                f"journal in Redis at {self.path}: {what}: Redis is unreachable ({type(exc).__name__})",
                remedy=remedy,
            ) from exc
        except redis.exceptions.RedisError as exc:
            raise JournalError(f"journal in Redis at {self.path}: {what}: {exc}", remedy=remedy) from exc

    def _write(self, what: str, script: SyncFencedScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        with self._errors(
            what,
            "check the cluster's Redis (reachable, not out of memory, not a read-only replica); "
            "no order is sent that the journal could not record first",
        ):
            return script(keys=[self._lease, *keys], args=[self.token, *args])

    def _read(self, what: str, read: Callable[[], T]) -> T:
        with self._errors(what, "check that the cluster's Redis runs and is reachable"):
            return read()

    # -- fills -------------------------------------------------------------------------------------
    def add_fill(self, scope: str, fill: Fill) -> bool:
        """Store `fill`; True if it was new, False if this venue id was journaled before."""
        self._check(fill.venue)
        keys = [
            self._key(scope, "fills"),
            self._key(scope, "fills:seq"),
            self._key(scope, "fills:ts"),
            self._key(scope, "fills:n"),
            self._nonce_key(scope),
        ]
        args: list[str | bytes | int] = [fill.exec_id, self._encoder.encode(fill), repr(fill.ts)]
        if self._stamp is not None and self._stream_maxlen is not None:
            node, epoch = self._stamp
            keys.append(self.keys.events(self.venue, topic_of(fill)))
            args.append(self._stream_maxlen)
            # The script adds `s` (the fill's seq, known only there).
            for name, value in encode_entry(fill, epoch=epoch, node=node, writer=JOURNAL_WRITER).items():
                args += (name, value)
        added = self._write(f"could not store fill {fill.exec_id}", self._add_fill, keys, args)
        return bool(added)

    def fills(self, venue: str, scope: str, *, limit: int | None = None) -> list[Fill]:
        """The newest `limit` fills of (venue, scope), oldest first."""
        self._check(venue)
        if limit == 0:
            return []
        start = 0 if limit is None or limit < 0 else -limit
        # Fills are never deleted and a fill's body lands with its index entries in one script:
        # every id read here has its body, though the two reads are not one instant.
        key = self._key(scope, "fills:ts")
        ids = cast(
            list[bytes], self._read("could not read fills", lambda: self._redis.zrange(key, start, -1))
        )
        return [self._decoder.decode(body) for body in self._bodies(scope, ids)]

    def fills_after(self, venue: str, scope: str, *, after: int, limit: int) -> list[tuple[int, Fill]]:
        """Up to `limit` fills of (venue, scope) in the order they were journaled, after the one
        numbered `after` (0: from the first), each with its number (`seq`)."""
        self._check(venue)
        if limit == 0:
            return []
        key = self._key(scope, "fills:seq")
        rows = cast(
            list[tuple[bytes, float]],
            self._read(
                "could not read fills",
                lambda: self._redis.zrangebyscore(
                    key, f"({after}", "+inf", start=0, num=limit if limit > 0 else -1, withscores=True
                ),
            ),
        )
        bodies = self._bodies(scope, [exec_id for exec_id, _ in rows])
        return [(int(seq), self._decoder.decode(body)) for (_, seq), body in zip(rows, bodies, strict=True)]

    def _bodies(self, scope: str, ids: Sequence[bytes]) -> list[bytes]:
        if not ids:
            return []
        key = self._key(scope, "fills")
        bodies = cast(list[bytes], self._read("could not read fills", lambda: self._redis.hmget(key, ids)))
        return bodies

    # -- orders ------------------------------------------------------------------------------------
    def add_order(self, scope: str, request: OrderRequest, *, ts: float) -> bool:
        """Write `request` ahead of its submit (state `sending`); False if its client order id was
        journaled before (nothing written). In Redis (fsynced with `appendfsync always`) when this
        returns."""
        assert request.client_order_id is not None
        self._check(request.venue)
        cid = request.client_order_id
        added = self._write(
            f"could not journal order {cid} before sending it",
            self._add_order,
            [self._key(scope, f"order:{cid}"), self._key(scope, "orders:sending"), self._nonce_key(scope)],
            [self._encoder.encode(request), repr(ts), cid],
        )
        return bool(added)

    def order(self, venue: str, scope: str, client_order_id: str) -> OrderRow | None:
        self._check(venue)
        key = self._key(scope, f"order:{client_order_id}")
        fields = cast(
            list[bytes | None],
            self._read("could not read an order", lambda: self._redis.hmget(key, _ORDER_FIELDS)),
        )
        return self._order_row(scope, client_order_id, fields)

    def order_by_venue_id(self, venue: str, scope: str, order_id: str) -> OrderRow | None:
        self._check(venue)
        found = self._read(
            "could not read an order",
            lambda: self._order_by_venue_id(
                keys=[self._key(scope, f"vid:{order_id}")], args=[self._key(scope, "")]
            ),
        )
        if not found:
            return None
        cid, fields = found
        return self._order_row(scope, cid.decode(), fields)

    def orders_in(self, venue: str, scope: str, states: Iterable[str]) -> list[OrderRow]:
        self._check(venue)
        wanted = list(dict.fromkeys(states))  # a state named twice is one (SQL's IN)
        if not wanted:
            return []
        flat = self._read(
            "could not read orders", lambda: self._orders_in(keys=[], args=[self._key(scope, ""), *wanted])
        )
        rows = [
            row
            for cid, fields in zip(flat[::2], flat[1::2], strict=True)
            if (row := self._order_row(scope, cid.decode(), fields)) is not None
        ]
        return sorted(rows, key=lambda row: (row.created, row.client_order_id))

    def _order_row(self, scope: str, client_order_id: str, fields: Sequence[bytes | None]) -> OrderRow | None:
        request, state, order_id, via, created, updated, error = fields
        if request is None or state is None or created is None or updated is None:
            return None
        return OrderRow(
            venue=self.venue,
            scope=scope,
            client_order_id=client_order_id,
            request=self._request_decoder.decode(request),
            state=state.decode(),
            order_id=_text(order_id),
            via=_text(via),
            created=float(created),
            updated=float(updated),
            error=None if error is None else self._error_decoder.decode(error),
        )

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
        self._check(venue)
        self._write(
            f"could not record the outcome of order {client_order_id}",
            self._update_order,
            [self._key(scope, f"order:{client_order_id}")],
            [
                self._key(scope, ""),
                client_order_id,
                state,
                repr(ts),
                _opt(order_id),
                _opt(via),
                b"" if error is None else self._encoder.encode(error),
            ],
        )

    def delete_order(self, venue: str, scope: str, client_order_id: str) -> None:
        """Forget a row whose order never left (refused on the way out): its id is free again."""
        self._check(venue)
        self._write(
            f"could not free client order id {client_order_id}",
            self._delete_order,
            [self._key(scope, f"order:{client_order_id}")],
            [self._key(scope, ""), client_order_id],
        )

    def release_order(self, venue: str, scope: str, client_order_id: str) -> bool:
        """Free the id of an order known never to have reached the venue (refused before anything
        was written): its row goes, only while undecided with no venue id, and only if this
        store's token wrote it — not fenced, so a holder whose lease lapsed before the send frees
        the id for the next holder (see `_RELEASE_ORDER`). True if it went."""
        self._check(venue)
        with self._errors(
            f"could not free client order id {client_order_id}",
            "check the cluster's Redis; until the row goes, the order is followed as unknown",
        ):
            released = self._release_order(
                keys=[self._key(scope, f"order:{client_order_id}")],
                args=[self._key(scope, ""), client_order_id, self.token],
            )
        return bool(released)

    # -- cancels and amends ------------------------------------------------------------------------
    def _op_key(self, part: str) -> str:
        """A key of the venue's op rows: ids are the venue's, across scopes (the SQLite table's
        AUTOINCREMENT), since `update_op` names an op by its id alone."""
        return self.keys.journal(self.venue, "op", part)

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
        self._check(venue)
        op_id = self._write(
            f"could not journal the {op} of order {order_id or client_order_id}",
            self._add_op,
            [self._op_key("n"), self._op_key("w:" + secrets.token_hex(8))],
            [
                self._op_key(""),
                scope,
                op,
                _opt(order_id),
                _opt(client_order_id),
                "" if qty is None else str(qty),
                "" if price is None else str(price),
                repr(ts),
                self._key(scope, f"ops:{op}:"),
            ],
        )
        return int(op_id)

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
            self._update_op,
            [self._op_key(str(op_id))],
            [
                str(op_id),
                state,
                repr(ts),
                _opt(order_id),
                b"" if error is None else self._encoder.encode(error),
            ],
        )

    def ops(self, venue: str, scope: str, op: OpKind, *, state: OpState | None = "pending") -> list[OrderOp]:
        """The cancels or amends of (venue, scope) in `state` (None: all), oldest first."""
        self._check(venue)
        index = self._key(scope, f"ops:{op}" if state is None else f"ops:{op}:{state}")
        flat = self._read(
            "could not read order operations", lambda: self._ops(keys=[index], args=[self._op_key("")])
        )
        ops: list[OrderOp] = []
        for op_id, fields in zip(flat[::2], flat[1::2], strict=True):
            row_scope, kind, order_id, cid, qty, price, row_state, created, error = fields
            if row_state is None or created is None:
                continue
            ops.append(
                OrderOp(
                    id=int(op_id),
                    venue=self.venue,
                    scope=_text(row_scope) or scope,
                    op=cast(OpKind, _text(kind)),
                    order_id=_text(order_id),
                    client_order_id=_text(cid),
                    qty=None if qty is None else Decimal(qty.decode()),
                    price=None if price is None else Decimal(price.decode()),
                    state=cast(OpState, row_state.decode()),
                    created=float(created),
                    error=None if error is None else self._error_decoder.decode(error),
                )
            )
        return ops

    # -- the store ---------------------------------------------------------------------------------
    def journal_mode(self) -> str:
        """How durable a write is when it returns: `aof-always` (fsynced before Redis answers),
        `aof-always-not-while-rewriting` (`no-appendfsync-on-rewrite yes`: not fsynced while the
        AOF is rewritten), `aof-everysec`, `aof-no` (the OS flushes when it likes), `none` (no
        AOF: gone with Redis), `aof-unknown` (CONFIG refused, as on some managed Redis: INFO says
        only that the AOF is on) or `unknown (…)`."""
        config = self._config("append*", "no-appendfsync-on-rewrite")
        if config is None:
            try:
                info = self._redis.info("persistence")
            except UNREACHABLE as exc:
                return f"unknown (Redis unreachable: {type(exc).__name__})"
            except redis.exceptions.RedisError as exc:
                return f"unknown ({type(exc).__name__})"
            return "aof-unknown" if info.get("aof_enabled") else "none"
        if config.get("appendonly") == "no":
            return "none"
        fsync = config.get("appendfsync", "unknown")
        if fsync == "always" and config.get("no-appendfsync-on-rewrite") == "yes":
            return "aof-always-not-while-rewriting"
        return f"aof-{fsync}"

    def durability_warnings(self) -> list[str]:
        """What in Redis's settings breaks the journal's promise (nothing acknowledged is lost,
        nothing is evicted); logged as WARNINGs when the store opens."""
        warnings: list[str] = []
        mode = self.journal_mode()
        if mode != "aof-always":
            warnings.append(
                f"persistence is {mode}, not appendonly yes + appendfsync always: a crash may lose the "
                "last journal writes, and a fill published then lost is published again by the next holder"
            )
        config = self._config("maxmemory-policy")
        policy = None if config is None else config.get("maxmemory-policy")
        if policy is not None and policy.startswith("allkeys-"):
            warnings.append(
                f"maxmemory-policy is {policy}: Redis may evict journal rows when full "
                "(use noeviction, or a volatile-* policy: journal keys have no TTL)"
            )
        return warnings

    def _config(self, *names: str) -> dict[str, str] | None:
        """CONFIG GET `names`; None when CONFIG is refused or renamed, or Redis does not answer."""
        try:
            raw = cast(dict[str | bytes, str | bytes], self._redis.config_get(*names))
        except redis.exceptions.ResponseError:
            return None
        except UNREACHABLE:
            return None
        # redis-py decodes CONFIG GET's names and values whatever `decode_responses` says.
        return {_str(name): _str(value) for name, value in raw.items()}

    def close(self) -> None:
        if self._owns_client:
            self._redis.close()
