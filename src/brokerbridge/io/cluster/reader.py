"""`StreamReader`: an edge reads the venue's event streams it follows, resumes by stream ID, and
says where data was lost (docs/cluster.md "Events").

One `XREAD BLOCK` over every followed stream, on one connection, with the last ID kept per stream.
Following a stream while the read blocks takes effect when the block ends: the block is short
(`BLOCK_MS`, 100 ms), so `add` waits at most that long, at a cost of ten empty XREADs a second per
idle reader (nothing for Redis) — chosen over a wake stream per reader, which would be one more key
per edge to create, trim and expire, and over cancelling the blocked read, which costs redis-py the
connection. Data is never lost by the wait: the stream is read from its given ID.

Gaps. Trimming (`MAXLEN ~`) removes entries from a stream's head only. Redis 7.0's XINFO STREAM
gives `entries-added` (every entry ever added) and `length`, so the first entry left is number
`entries-added − length + 1`; the reader counts the entries it reads from a known position (the
stream's tail when it starts following it, a gap) and knows the number of its last one: the next
it needs is gone → `on_gap(topic, reason)`, and reading goes on from the oldest entry left. From
an ID given by the caller the number is not known: a first entry after that ID is a gap then
(conservative: it also says so when exactly that ID's successors were kept). `max-deleted-entry-id`
cannot serve: Redis 7.0 updates it on XDEL, not on trimming. A stream that is gone, or whose
`last-generated-id` is below ours (Redis restarted without its AOF, or the stream was deleted and
made again), is a gap too, and it is read again from its start.

The check runs for a stream when it is added with an ID, after every reconnect or restart of
`run`, and before the read after one that filled its batch (`COUNT`: the reader is behind). A
caught-up reader could still be overtaken between two reads by more than `maxlen` entries at once
(a burst no venue sends at the default 100,000, but a tiny `maxlen` may): the publisher's
numbering (`s`, codec.py) catches that — a number skipped within one epoch is a gap of exactly
that many entries — and a number met again is a copy of a retried write, dropped. The numbering is
followed per writer (`Entry.writer`): in the executions stream the holder's journal streams each
fill with its own numbers (the fill's journal `seq`) between the publisher's entries.

Redis unreachable: `on_down(reason)` once, reads again after a capped jittered backoff on the
clock, `on_up()` once it answers, then the gap check of every stream. An entry that does not
decode is skipped, told as a gap (its data is lost to this edge) and logged as an ERROR.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

import redis.asyncio
import redis.exceptions

from brokerbridge.core.backoff import BackoffPolicy
from brokerbridge.core.clock import Clock
from brokerbridge.core.errors import ProtocolError
from brokerbridge.io.cluster.codec import Entry, decode_entry
from brokerbridge.io.cluster.keys import ClusterKeys
from brokerbridge.io.cluster.link import is_unreachable
from brokerbridge.io.cluster.outage import Outage

logger = logging.getLogger(__name__)

BLOCK_MS = 100  # how long one XREAD waits for news: also how long a newly added stream waits
COUNT = 1000  # entries per stream per XREAD: a full batch means the reader is behind
START = "0-0"  # before every entry
TAIL = "$"  # the stream's end when the reader first reads it
RECONNECT_BACKOFF = BackoffPolicy(initial=0.1, cap=2.0)


def parse_id(stream_id: str) -> tuple[int, int]:
    """A stream ID `ms-seq` as a comparable pair (`5` alone is `5-0`)."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def text_of(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class _Position(NamedTuple):
    """Where a stream stands (XINFO STREAM): its last ID, entries ever added, entries kept."""

    last_id: str
    added: int
    length: int
    first_id: str  # the oldest entry kept (`0-0`: none)

    @property
    def first_number(self) -> int:
        """The number (1-based, in `added` terms) of the oldest entry kept; `added + 1`: none."""
        return self.added - self.length + 1


class StreamReader:
    def __init__(
        self,
        redis: redis.asyncio.Redis,
        keys: ClusterKeys,
        venue: str,
        *,
        on_entry: Callable[[str, str, Entry], None],
        on_gap: Callable[[str, str], None],
        on_down: Callable[[str], None],
        on_up: Callable[[], None],
        clock: Clock,
        block_ms: int = BLOCK_MS,
        count: int = COUNT,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._venue = venue
        self._on_entry = on_entry
        self._on_gap = on_gap
        self._on_down = on_down
        self._on_up = on_up
        self._clock = clock
        self._block_ms = block_ms
        self._count = count
        self._last: dict[str, str] = {}  # topic → the last ID read (or TAIL, START)
        # topic → the number of the last entry read (entries-added terms); absent: not known
        self._number: dict[str, int] = {}
        # topic → writer → (epoch, node, number) of the last entry read, by that writer's numbering
        self._sequence: dict[str, dict[str, tuple[int, str, int]]] = {}
        self._check: set[str] = set()  # topics whose gap check is due before the next read
        self._wake = asyncio.Event()  # set by add: wakes a reader that followed nothing
        self.down: str | None = None  # why Redis is unreachable; None while it answers
        self.gaps = 0  # gaps told (for status and tests)

    @property
    def topics(self) -> dict[str, str]:
        """Every followed topic and the last ID read of it (for status: stream lags)."""
        return dict(self._last)

    def add(self, topic: str, from_id: str = TAIL) -> None:
        """Follow `topic` from after `from_id` (an entry ID, `0-0` for the whole stream, `$` for
        what is added after the reader first reads it). Already followed: nothing changes — the
        reader keeps its place. To be sure to see what is published right after this call (the
        join's refresh), pass `await tail(topic)` rather than `$`."""
        if topic in self._last:
            return
        if from_id != TAIL:
            parse_id(from_id)  # a bad ID fails here, in the caller, not in the read loop
            self._check.add(topic)
        self._last[topic] = from_id
        self._wake.set()

    def remove(self, topic: str) -> None:
        self._last.pop(topic, None)
        self._number.pop(topic, None)
        self._sequence.pop(topic, None)
        self._check.discard(topic)

    async def tail(self, topic: str) -> str:
        """The ID of the last entry ever added to `topic`'s stream (`0-0`: none yet); raises when
        Redis is unreachable (`link.UNREACHABLE`)."""
        position = await self._position(topic)
        return START if position is None else position.last_id

    async def run(self) -> None:
        """Read until cancelled. A run after an earlier one ended resumes where it stopped, as
        after a reconnect: every stream is checked for gaps first."""
        self._check.update(t for t, last in self._last.items() if last != TAIL)
        outage = Outage(RECONNECT_BACKOFF, self._clock)
        while True:
            try:
                if outage.reason is not None:
                    await self._redis.ping()
                if outage.end():
                    self.down = None
                    logger.info("%s: reading event streams again", self._venue)
                    self._on_up()
                await self._read_once()
            except Exception as exc:
                if not is_unreachable(exc):
                    raise
                if outage.begin(exc):
                    self.down = outage.reason
                    self._check.update(t for t, last in self._last.items() if last != TAIL)
                    logger.warning("%s: event streams down: %s", self._venue, self.down)
                    self._on_down(outage.reason or "")
                await outage.wait()

    async def _read_once(self) -> None:
        if not self._last:
            self._wake.clear()
            await self._wake.wait()  # nothing to read until a stream is added
            return
        await self._resolve_tails()
        if self._check:
            await self._check_gaps()
        topics = list(self._last)
        streams: dict[Any, Any] = {self._keys.events(self._venue, t): self._last[t] for t in topics}
        topic_of_key = dict(zip(streams, topics, strict=True))
        reply = await self._xread(streams)
        for key, records in stream_records(reply):
            topic = topic_of_key.get(text_of(key))
            if topic is None or topic not in self._last:
                continue  # removed while the read was in flight
            for raw_id, fields in records:
                entry_id = text_of(raw_id)
                self._last[topic] = entry_id
                if topic in self._number:
                    self._number[topic] += 1
                try:
                    entry = decode_entry(fields)
                except ProtocolError as exc:
                    logger.error("%s: entry %s of %s skipped: %s", self._venue, entry_id, topic, exc)
                    self._gap(topic, f"an entry of the stream could not be read ({exc.message})")
                    continue
                if not self._in_sequence(topic, entry):
                    continue
                self._on_entry(topic, entry_id, entry)
                if topic not in self._last:
                    break  # the consumer let go of it
            if len(records) >= self._count:
                self._check.add(topic)

    async def _xread(self, streams: dict[Any, Any]) -> Any:
        return await blocking_read(self._redis, streams, count=self._count, block_ms=self._block_ms)

    async def _resolve_tails(self) -> None:
        for topic in [t for t, last in self._last.items() if last == TAIL]:
            position = await self._position(topic)
            if self._last.get(topic) == TAIL:
                self._last[topic] = START if position is None else position.last_id
                self._number[topic] = 0 if position is None else position.added

    async def _check_gaps(self) -> None:
        for topic in list(self._check):
            self._check.discard(topic)
            last = self._last.get(topic)
            if last is None or last == TAIL:
                continue
            position = await self._position(topic)
            if last == START:  # the whole stream, whatever is left of it: no gap by definition
                self._number[topic] = 0 if position is None else position.first_number - 1
                continue
            reason = self._gap_reason(topic, last, position)
            if reason is None:
                continue
            if self._made_again(topic, last, position):
                self._last[topic] = START  # a new stream, or none yet: read it whole
            # the next entry read is the oldest kept
            self._number[topic] = 0 if position is None else position.first_number - 1
            logger.warning("%s: gap in %s after %s: %s", self._venue, topic, last, reason)
            self._sequence.pop(topic, None)  # told here: not again by the numbering
            self._gap(topic, reason)

    def _gap_reason(self, topic: str, last: str, position: _Position | None) -> str | None:
        if position is None:
            return "the stream is gone from Redis (restarted without its data, or deleted)"
        if self._made_again(topic, last, position):
            return "the stream was made again (Redis restarted without its data, or it was deleted)"
        number = self._number.get(topic)
        if number is not None:
            lost = position.first_number - number - 1
            if lost <= 0:
                return None
            return f"{lost} entries after the last one read were trimmed (beyond the stream's retention)"
        if position.length and parse_id(position.first_id) > parse_id(last):
            return "entries after the last one read may have been trimmed (beyond the stream's retention)"
        return None

    def _in_sequence(self, topic: str, entry: Entry) -> bool:
        """False for a copy of an entry already read (a publisher's write retried after a
        timeout that had landed after all); a gap when the publisher's numbering skips."""
        if entry.seq is None:
            return True
        writers = self._sequence.setdefault(topic, {})
        previous = writers.get(entry.writer)
        if previous is not None and previous[:2] == (entry.epoch, entry.node):
            if entry.seq <= previous[2]:
                logger.debug("%s: a copy of entry %d of %s skipped", self._venue, entry.seq, topic)
                return False
            skipped = entry.seq - previous[2] - 1
            if skipped > 0:
                # Trimming overtook a reader that was not behind (more than maxlen entries
                # between two reads): XINFO cannot see it, the numbering does.
                if topic in self._number:
                    self._number[topic] += skipped
                reason = f"{skipped} entries were trimmed before this node read them (beyond retention)"
                logger.warning("%s: gap in %s: %s", self._venue, topic, reason)
                self._gap(topic, reason)
        writers[entry.writer] = (entry.epoch, entry.node, entry.seq)
        return True

    def _made_again(self, topic: str, last: str, position: _Position | None) -> bool:
        """The stream is not the one read up to `last`: gone, or its IDs or count went back."""
        if position is None:
            return True
        number = self._number.get(topic)
        return parse_id(position.last_id) < parse_id(last) or (number is not None and position.added < number)

    def _gap(self, topic: str, reason: str) -> None:
        self.gaps += 1
        self._on_gap(topic, reason)

    async def _position(self, topic: str) -> _Position | None:
        try:
            info: dict[Any, Any] = await self._redis.xinfo_stream(self._keys.events(self._venue, topic))
        except redis.exceptions.ResponseError as exc:
            if "no such key" in str(exc).lower():
                return None
            raise
        fields = {text_of(k): v for k, v in info.items()}
        first = fields.get("first-entry")
        first_id = text_of(first[0]) if first else START
        return _Position(
            text_of(fields["last-generated-id"]),
            int(fields["entries-added"]),
            int(fields["length"]),
            first_id,
        )


async def blocking_read(
    redis: redis.asyncio.Redis, streams: dict[Any, Any], *, count: int, block_ms: int
) -> Any:
    """`XREAD COUNT count BLOCK block_ms STREAMS …`, cancellable cleanly: cancelled, it lets the
    read end first — within one block, or the command timeout — then stops. Cancelling redis-py
    8.2 inside a blocked read costs the connection (it closes it: the reply is still to come).
    (A cancel redis-py used to drop — Python 3.11's `wait_for` around its send — is raised again
    by our clients: io/cluster/link.py "Cancellation".)"""
    read = asyncio.ensure_future(redis.xread(streams, count=count, block=block_ms))
    try:
        return await asyncio.shield(read)
    except asyncio.CancelledError:
        await asyncio.wait([read])
        if not read.cancelled():
            read.exception()  # retrieved: nobody else will read it
        raise


def stream_records(reply: Any) -> list[tuple[Any, list[tuple[Any, Any]]]]:
    """XREAD's reply as (stream key, records): a list with RESP2, a dict with RESP3."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return [
            (key, value[0] if value and isinstance(value[0], list) else value) for key, value in reply.items()
        ]
    return [(key, records) for key, records in reply]
