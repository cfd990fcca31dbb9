"""`EventPublisher`: the holder's normalized events into the venue's Redis streams, fenced
(docs/cluster.md "Events").

`publish(event)` only appends to a buffer; one writer task takes everything buffered in a loop
turn (and whatever arrives while a write is in flight) and writes it with **one fenced Lua call
per batch**: the fence prelude (`GET lease == token`) then a loop of `XADD <stream of the event's
topic> MAXLEN ~ maxlen * e … ep … n …`. Redis commands per event: 1 XADD + 2/batch (the EVALSHA
and the fence's GET), so ≈ 1 under load. The alternative, a pipeline of one fenced call per event,
costs 3 commands per event (EVALSHA + GET + XADD) and wrote 2.4–4.8× fewer events per second on this
box (bench/cluster_streams.py, bench/README.md). A batch is capped at `batch_max` events so one
script never holds Redis (single-threaded) for long.

Order: one batch in flight at a time, events in publish order, so every stream is in the holder's
order. Each entry carries its number in its stream (`s`, from 1 for this publisher), so a reader
sees exactly which entries it missed. A batch whose write failed for want of Redis (refused,
reset, timed out) is written again after a backoff with the same numbers: a write that timed out
may have landed, and the reader drops the copy — none lost, none twice. While Redis stays
away the buffer is capped at `max_buffer` events: beyond it the oldest are dropped (ERROR), and
once Redis answers again a `Gap` for each stream that lost events is published first.

Fenced (another node holds the venue, or the lease lapsed): nothing more is written, the buffer is
dropped and `on_fenced(reason)` is called once; later `publish` calls are ignored.

Fills (`skip_fills`, a holder's publisher): the holder's journal in Redis streams each new fill in
the same script that journals it (io/cluster/journal.py), so the publisher drops every `Fill` it is
given — written twice, a client would get it twice; left to a flush, a lease lost between the two
writes would leave it journaled and never streamed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio

from brokerbridge.core.backoff import BackoffPolicy
from brokerbridge.core.clock import Clock, SystemClock, within
from brokerbridge.core.events import AnyEvent, Fill, Gap, encode_event
from brokerbridge.core.topics import topic_of
from brokerbridge.io.cluster.fencing import fenced_script, is_fenced, parse_token
from brokerbridge.io.cluster.keys import ClusterKeys
from brokerbridge.io.cluster.link import is_unreachable
from brokerbridge.io.cluster.outage import Outage

logger = logging.getLogger(__name__)

# KEYS[1] lease (the prelude's), KEYS[2..] the batch's streams; ARGV[1] token (the prelude's),
# ARGV[2] maxlen, ARGV[3] epoch, ARGV[4] node, then per event: the stream's KEYS index, the
# event's JSON, its number in the stream (codec.py: `s`).
BATCH_BODY = """
for i = 5, #ARGV, 3 do
  redis.call('XADD', KEYS[tonumber(ARGV[i])], 'MAXLEN', '~', ARGV[2], '*',
             'e', ARGV[i + 1], 'ep', ARGV[3], 'n', ARGV[4], 's', ARGV[i + 2])
end
return (#ARGV - 4) / 3
"""
BATCH_MAX = 500  # events per script: ~1 ms of Redis's one thread on this box
MAX_BUFFER = 100_000  # events held while Redis is away (the lease lapses long before, in ~3 s)
CLOSE_TIMEOUT_S = 2.0  # aclose's last flush: a clean step-down, not a wait on a dead Redis
RETRY_BACKOFF = BackoffPolicy(initial=0.05, cap=1.0)


@dataclass(slots=True)
class _Lost:
    """What the buffer cap dropped of one topic: told as a `Gap` once Redis answers again."""

    start: float
    end: float
    count: int


class EventPublisher:
    def __init__(
        self,
        redis: redis.asyncio.Redis,
        keys: ClusterKeys,
        venue: str,
        *,
        token: str,
        maxlen: int,
        on_fenced: Callable[[str], None],
        clock: Clock | None = None,
        batch_max: int = BATCH_MAX,
        max_buffer: int = MAX_BUFFER,
        skip_fills: bool = False,
    ) -> None:
        """`skip_fills`: fills are streamed by the journal's own write (`RedisJournalStore` with
        `stream_maxlen`): `publish` drops them."""
        if maxlen < 1:
            raise ValueError(f"maxlen must be at least 1 (entries kept per stream), not {maxlen}")
        self._keys = keys
        self._venue = venue
        self._token = token
        self._node, self._epoch = parse_token(token)
        self._maxlen = maxlen
        self._on_fenced = on_fenced
        self._clock = clock or SystemClock()
        self._skip_fills = skip_fills
        self._batch_max = max(1, batch_max)
        self._max_buffer = max(self._batch_max, max_buffer)
        self._script = fenced_script(redis, BATCH_BODY)
        self._buffer: list[AnyEvent] = []
        self._lost: dict[str, _Lost] = {}
        self._numbers: dict[str, int] = {}  # topic → the number of its last entry written
        self._gaps: list[AnyEvent] = []  # Gaps of dropped events, not written yet
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._queued = 0  # events ever accepted by publish (the flush targets)
        self._done = 0  # events ever written, dropped or abandoned
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.fenced: str | None = None  # the refusal's reason, once fenced
        self.closed = False
        self.written = 0  # events written (for status and the benchmark)
        self.skipped = 0  # fills dropped: the journal streamed them (`skip_fills`)
        self.batches = 0

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def publish(self, event: AnyEvent) -> None:
        """Queue `event` for its topic's stream; written with the rest of this loop turn's."""
        if self.fenced is not None or self.closed:
            return
        if self._skip_fills and isinstance(event, Fill):
            self.skipped += 1
            return
        self._buffer.append(event)
        self._queued += 1
        if len(self._buffer) > self._max_buffer:
            self._drop_oldest(len(self._buffer) - self._max_buffer)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._write_loop(), name=f"publish-{self._venue}"
            )
        self._wake.set()

    async def flush(self) -> None:
        """Return once every event published before the call is written (or the publisher fenced
        or closed: then nothing more will be)."""
        target = self._queued
        if self._done >= target or self.fenced is not None or self._task is None:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        await future

    async def aclose(self) -> None:
        """Write what is buffered (for at most `CLOSE_TIMEOUT_S` on the clock), then stop."""
        if self.closed:
            return
        try:
            await within(self._clock, CLOSE_TIMEOUT_S, self.flush())
        except TimeoutError:
            logger.warning(
                "%s: %d events not published at close (Redis did not take them within %.0f s)",
                self._venue,
                len(self._buffer),
                CLOSE_TIMEOUT_S,
            )
        self.closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._abandon()

    async def _write_loop(self) -> None:
        outage = Outage(RETRY_BACKOFF, self._clock)
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._buffer or self._lost or self._gaps:
                gaps, events = self._next_batch()
                try:
                    await self._write(gaps + events)
                except asyncio.CancelledError:
                    self._buffer[:0] = events  # unwritten: aclose abandons and counts them
                    raise
                except Exception as exc:
                    if is_fenced(exc):
                        self._fence(str(exc))
                        return
                    # Written again, in order, before anything newer.
                    self._gaps[:0] = gaps
                    self._buffer[:0] = events
                    if outage.begin(exc):  # Redis away, or an error reply (OOM…): retried alike
                        level = logging.WARNING if is_unreachable(exc) else logging.ERROR
                        logger.log(level, "%s: publishing events failed, retrying: %r", self._venue, exc)
                    await outage.wait()
                    continue
                if outage.end():
                    logger.info("%s: publishing events again", self._venue)
                self._settle(len(events))

    def _next_batch(self) -> tuple[list[AnyEvent], list[AnyEvent]]:
        """(the Gaps of what the cap dropped, the oldest buffered events): at most `batch_max`."""
        # What the cap dropped goes first, as Gaps: a reader learns of the loss before it reads
        # anything after it.
        for topic, lost in self._lost.items():
            reason = f"the holder dropped {lost.count} events while Redis did not take them"
            self._gaps.append(
                Gap(
                    venue=self._venue,
                    ts=lost.end,
                    stream=topic,
                    start=lost.start,
                    end=lost.end,
                    reason=reason,
                )
            )
        self._lost.clear()
        gaps, self._gaps = self._gaps[: self._batch_max], self._gaps[self._batch_max :]
        take = self._batch_max - len(gaps)
        events, self._buffer = self._buffer[:take], self._buffer[take:]
        return gaps, events

    async def _write(self, batch: list[AnyEvent]) -> None:
        stream_index: dict[str, int] = {}
        keys: list[str] = [self._keys.lease(self._venue)]
        args: list[str | bytes | int] = [self._token, self._maxlen, self._epoch, self._node]
        numbers: dict[str, int] = {}
        for event in batch:
            topic = topic_of(event)
            stream = self._keys.events(self._venue, topic)
            index = stream_index.get(stream)
            if index is None:
                keys.append(stream)
                index = stream_index[stream] = len(keys)  # Lua's KEYS are 1-based
            number = numbers[topic] = numbers.get(topic, self._numbers.get(topic, 0)) + 1
            args += (index, encode_event(event), number)
        await self._script(keys=keys, args=args)
        # Counted only once written: a batch written again after a failure keeps its numbers, so
        # a copy that had landed after all (a timeout) is seen as one by the reader.
        self._numbers.update(numbers)
        self.written += len(batch)
        self.batches += 1

    def _settle(self, count: int) -> None:
        self._done += count
        still: list[tuple[int, asyncio.Future[None]]] = []
        for target, future in self._waiters:
            if self._done >= target:
                if not future.done():
                    future.set_result(None)
            else:
                still.append((target, future))
        self._waiters = still

    def _drop_oldest(self, count: int) -> None:
        dropped, self._buffer = self._buffer[:count], self._buffer[count:]
        for event in dropped:
            topic = topic_of(event)
            lost = self._lost.get(topic)
            if lost is None:
                self._lost[topic] = _Lost(event.ts, event.ts, 1)
            else:
                lost.start, lost.end, lost.count = (
                    min(lost.start, event.ts),
                    max(lost.end, event.ts),
                    lost.count + 1,
                )
        logger.error(
            "%s: %d events dropped: Redis has not taken them and the buffer holds %d at most",
            self._venue,
            count,
            self._max_buffer,
        )
        self._settle(count)

    def _fence(self, reason: str) -> None:
        self.fenced = reason
        logger.warning("%s: publishing stopped, fenced: %s", self._venue, reason)
        self._abandon()
        self._on_fenced(reason)

    def _abandon(self) -> None:
        """Nothing buffered will be written: release every flush waiting for it."""
        self._settle(len(self._buffer))
        self._buffer.clear()
        self._lost.clear()
        self._gaps.clear()
        for _, future in self._waiters:
            if not future.done():
                future.set_result(None)
        self._waiters.clear()
