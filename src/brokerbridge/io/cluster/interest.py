"""Interest: market data reference-counted cluster-wide (docs/cluster.md "Interest").

- **Edge** (`InterestRegistry`): the subscriptions this node wants of a venue, as a Redis SET
  (`bb:{v}:interest:<node>`, members = canonical subscription JSON, codec.py) with a TTL, and a
  note on the venue's `ctl` stream whenever it changes. `add`/`remove`/`request_refresh` are
  synchronous (the edge's fan-out calls them): `run()` writes them, in order, and keeps the TTL
  (every ttl/3); `aclose()` deletes the set on a clean stop. The whole set is written each time
  (DEL + SADD + PEXPIRE in one MULTI): it is small, and a Redis restarted without its data gets it
  back at the next write or keep-alive.
- **Holder** (`InterestFollower`): the union over the live nodes' sets (SCAN over the venue's
  interest keys, then SMEMBERS), on each `ctl` note and every `interval`; a subscription is wanted
  while at least one node's set holds it (`on_want` when the first does, `on_drop` when the last
  lets go: the count is across nodes). A dead node's set expires with its TTL and the next union
  drops what only it wanted. Refresh notes → `on_refresh(sub)`, coalesced per read.

A `ctl` note is an entry `k` = `interest` (the node's set changed) or `refresh` (with `sub`),
`n` = the node; XADD `MAXLEN ~ 1000`: notes are prompts, the sets are the state.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import redis.asyncio

from brokerbridge.core.backoff import BackoffPolicy
from brokerbridge.core.clock import Clock, SystemClock, sleep_unless
from brokerbridge.core.errors import ProtocolError
from brokerbridge.core.events import Subscription
from brokerbridge.io.cluster.codec import subscription_of, subscription_text
from brokerbridge.io.cluster.keys import ClusterKeys
from brokerbridge.io.cluster.link import is_unreachable
from brokerbridge.io.cluster.outage import Outage
from brokerbridge.io.cluster.reader import START, blocking_read, stream_records, text_of

logger = logging.getLogger(__name__)

CTL_MAXLEN = 1000  # notes kept on a venue's ctl stream (prompts only: the sets are the state)
KIND_INTEREST = b"interest"
KIND_REFRESH = b"refresh"
BLOCK_MS = 100  # the follower's ctl read: how long one XREAD waits
RETRY_BACKOFF = BackoffPolicy(initial=0.1, cap=2.0)


class InterestRegistry:
    """This node's wants of `venue`, kept in Redis with a TTL (edge side)."""

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        keys: ClusterKeys,
        venue: str,
        node_id: str,
        *,
        ttl: float,
        clock: Clock | None = None,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be positive (seconds a dead node's interest lasts), not {ttl}")
        self._redis = redis
        self._keys = keys
        self._venue = venue
        self._node = node_id
        self._ttl = ttl
        self._clock = clock or SystemClock()
        self._wanted: dict[str, Subscription] = {}  # subscription text → subscription
        self._version = 0  # bumped on every change of `_wanted`
        self._written: int | None = None  # the version the set in Redis has (None: not known)
        self._refresh: dict[str, None] = {}  # subscription texts to ask a refresh of, in order
        self._wake = asyncio.Event()

    @property
    def wanted(self) -> list[Subscription]:
        return list(self._wanted.values())

    def add(self, sub: Subscription) -> None:
        text = subscription_text(sub)
        if text not in self._wanted:
            self._wanted[text] = sub
            self._changed()

    def remove(self, sub: Subscription) -> None:
        if self._wanted.pop(subscription_text(sub), None) is not None:
            self._changed()

    def request_refresh(self, sub: Subscription) -> None:
        """Ask the holder to publish `sub`'s current state into its stream (after the interest
        change this node made before it, so the holder already streams it)."""
        self._refresh[subscription_text(sub)] = None
        self._wake.set()

    def _changed(self) -> None:
        self._version += 1
        self._wake.set()

    @property
    def _dirty(self) -> bool:
        return self._written != self._version

    async def run(self) -> None:
        """Write changes as they come and keep the set's TTL, until cancelled."""
        outage = Outage(RETRY_BACKOFF, self._clock)
        while True:
            try:
                await self._sync()
            except Exception as exc:
                if not is_unreachable(exc):
                    raise
                if outage.begin(exc):
                    logger.warning("%s: interest not written: %s", self._venue, outage.reason)
                self._written = None  # written whole once Redis answers
                await outage.wait()
                continue
            outage.end()
            self._wake.clear()
            if not self._dirty and not self._refresh:
                await sleep_unless(self._clock, self._ttl / 3, self._wake)

    async def _sync(self) -> None:
        key = self._keys.interest(self._venue, self._node)
        ctl = self._keys.control(self._venue)
        if not self._dirty and self._wanted:
            # Keep-alive: PEXPIRE answers 0 when the key is gone (Redis lost it): write it again.
            if not await self._redis.pexpire(key, self._ttl_ms()):
                self._written = None
        if self._dirty:
            version, members = self._version, list(self._wanted)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                if members:
                    pipe.sadd(key, *members)
                    pipe.pexpire(key, self._ttl_ms())
                pipe.xadd(ctl, {b"k": KIND_INTEREST, b"n": self._node}, maxlen=CTL_MAXLEN, approximate=True)
                await pipe.execute()
            self._written = version  # a change made meanwhile is written at the next turn
        if self._refresh:
            texts = list(self._refresh)
            async with self._redis.pipeline(transaction=False) as pipe:
                for text in texts:
                    fields = {b"k": KIND_REFRESH, b"n": self._node, b"sub": text}
                    pipe.xadd(ctl, fields, maxlen=CTL_MAXLEN, approximate=True)  # type: ignore[arg-type]
                await pipe.execute()
            for text in texts:
                self._refresh.pop(text, None)

    async def aclose(self) -> None:
        """A clean stop: the node's set deleted and noted, so the holder lets go now rather than
        when the TTL runs out. Redis away: nothing to do — the TTL does it."""
        self._wanted.clear()
        self._refresh.clear()
        self._changed()
        try:
            await self._sync()
        except Exception as exc:
            if not is_unreachable(exc):
                raise
            logger.info("%s: interest left to expire (%s)", self._venue, type(exc).__name__)

    def _ttl_ms(self) -> int:
        return max(1, round(self._ttl * 1000))


class InterestFollower:
    """The union of every live node's wants of `venue`, reference counted (holder side)."""

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        keys: ClusterKeys,
        venue: str,
        *,
        on_want: Callable[[Subscription], None],
        on_drop: Callable[[Subscription], None],
        on_refresh: Callable[[Subscription], None],
        interval: float,
        clock: Clock | None = None,
        block_ms: int = BLOCK_MS,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._venue = venue
        self._on_want = on_want
        self._on_drop = on_drop
        self._on_refresh = on_refresh
        self._interval = interval
        self._clock = clock or SystemClock()
        self._block_ms = block_ms
        self._counts: Counter[str] = Counter()  # subscription text → nodes wanting it
        self._subs: dict[str, Subscription] = {}
        self._last_ctl: str | None = None  # the last ctl note read (None: start at its tail)
        self._next_union = 0.0  # when the union is due again (clock's monotonic)
        self.down: str | None = None

    @property
    def counts(self) -> dict[Subscription, int]:
        """Every wanted subscription and how many live nodes want it."""
        return {self._subs[text]: n for text, n in self._counts.items()}

    async def run(self) -> None:
        """Follow until cancelled; `on_want` first for everything already wanted."""
        outage = Outage(RETRY_BACKOFF, self._clock)
        self._next_union = self._clock.monotonic()  # a union at once
        while True:
            try:
                if self._last_ctl is None:
                    self._last_ctl = await self._ctl_tail()
                if self._clock.monotonic() >= self._next_union:
                    await self._union()
                await self._read_notes(self._last_ctl)
            except Exception as exc:
                if not is_unreachable(exc):
                    raise
                if outage.begin(exc):
                    self.down = outage.reason
                    logger.warning("%s: interest not followed: %s", self._venue, self.down)
                self._next_union = self._clock.monotonic()  # once Redis answers: the sets may have changed
                await outage.wait()
                continue
            if outage.end():
                self.down = None
                logger.info("%s: interest followed again", self._venue)

    async def _ctl_tail(self) -> str:
        last: Any = await self._redis.xrevrange(self._keys.control(self._venue), count=1)
        return text_of(last[0][0]) if last else START

    async def _read_notes(self, after: str) -> None:
        ctl = self._keys.control(self._venue)
        reply = await blocking_read(self._redis, {ctl: after}, count=1000, block_ms=self._block_ms)
        union_due = False
        refresh: dict[str, None] = {}
        for _, records in stream_records(reply):
            for raw_id, fields in records:
                self._last_ctl = text_of(raw_id)
                kind, sub = fields.get(b"k"), fields.get(b"sub")
                if kind == KIND_INTEREST:
                    union_due = True
                elif kind == KIND_REFRESH and sub is not None:
                    refresh[text_of(sub)] = None
        if union_due:
            await self._union()
        for text in refresh:  # after the union: a new stream is held before its refresh
            try:
                sub = subscription_of(text)
            except ProtocolError as exc:
                logger.warning("%s: a refresh note skipped: %s", self._venue, exc)
                continue
            self._on_refresh(sub)

    async def _union(self) -> None:
        self._next_union = self._clock.monotonic() + self._interval
        members = await self._node_sets()
        counts: Counter[str] = Counter()
        for texts in members:
            counts.update(set(texts))
        for text in counts:
            if text not in self._subs:
                try:
                    self._subs[text] = subscription_of(text)
                except ProtocolError as exc:
                    logger.warning("%s: an interest member skipped: %s", self._venue, exc)
        counts = Counter({text: n for text, n in counts.items() if text in self._subs})
        gained = [text for text in counts if text not in self._counts]
        lost = [text for text in self._counts if text not in counts]
        self._counts = counts
        for text in gained:
            self._on_want(self._subs[text])
        for text in lost:
            self._on_drop(self._subs.pop(text))

    async def _node_sets(self) -> list[list[str]]:
        """The members of every node's interest set of the venue (the expired are gone)."""
        keys: list[Any] = [
            key
            async for key in self._redis.scan_iter(
                match=_glob_escape(self._keys.interest_prefix(self._venue)) + "*", count=1000
            )
        ]
        if not keys:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.smembers(key)
            sets = await pipe.execute()
        return [[text_of(m) for m in members] for members in sets]


def _glob_escape(text: str) -> str:
    """`text` as a literal in a SCAN MATCH pattern (the hash tag's braces are literal already;
    `*?[]\\` are not)."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
