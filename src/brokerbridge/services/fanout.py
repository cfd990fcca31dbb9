"""`FanOut`: one upstream stream per distinct subscription, delivered to every local consumer.

Consumers of the same `Subscription` share one upstream stream, reference counted: the first
opens it (`Upstream.open`), the last one leaving closes it — after `grace_s` on the clock when the
fan-out has timers, so a quick re-subscribe reuses it. A consumer is a bounded queue (`subscribe`)
or a callback (`listen`, for the server's own fan-out). Market data that overflows a queue drops
the oldest events and tells the consumer with a `Gap` naming the lost window (books are given again
whole); private streams are never dropped (unbounded queues). A consumer joining an open stream
gets its current state first (`Upstream.current_state`), not a wait for the next change. The
owner may `hold` a stream with no consumer at all (the Bridge's account streams, warm market
streams): a reference like a consumer's, so the stream stays open while it is held.

A stream the venue refuses for good ends its consumers' iterators with the venue's error, after
the events that came before it. Watchers of a venue's status feed get every `StreamStatus` and
`Gap` of its streams. Every event is routed by its topic (`topic_of`, the `Subscription.describe()`
it belongs to). No I/O here: the `Upstream` holds the venue streams.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from brokerbridge.core.clock import Clock
from brokerbridge.core.errors import VenueError
from brokerbridge.core.events import (
    AnyEvent,
    BookSnapshot,
    Channel,
    Gap,
    StreamState,
    StreamStatus,
    Subscription,
)
from brokerbridge.core.topics import topic_of

logger = logging.getLogger(__name__)


class Upstream(Protocol):
    """What the fan-out needs of whoever holds the venue streams (the Bridge's connectors)."""

    def open(self, sub: Subscription) -> None:
        """`sub` has its first consumer: stream it."""
        ...

    def close(self, sub: Subscription) -> None:
        """`sub` has had no consumer for the grace period: stop streaming it."""
        ...

    def current_state(self, sub: Subscription) -> list[AnyEvent]:
        """What a consumer joining open stream `sub` is given first (its status first)."""
        ...

    def status_of(self, sub: Subscription) -> StreamStatus: ...

    def book_snapshot(self, sub: Subscription) -> BookSnapshot | None: ...


@dataclass
class Consumer:
    """One consumer of a stream: a queue (`FanOut.subscribe`) or a callback (`FanOut.listen`)."""

    sub: Subscription
    queue: asyncio.Queue[AnyEvent] | None  # None: a listener
    lossless: bool
    dropped: int = 0
    refused: VenueError | None = None  # the venue refused the stream for good: end the iterator
    listener: Callable[[AnyEvent], None] | None = None
    on_refused: Callable[[VenueError], None] | None = None


class Listening:
    """A stream delivered by calls (`Bridge.listen`); `close()` stops it (once is enough)."""

    __slots__ = ("_close",)

    def __init__(self, close: Callable[[], None]) -> None:
        self._close: Callable[[], None] | None = close

    def close(self) -> None:
        close, self._close = self._close, None
        if close is not None:
            close()


class FanOut:
    def __init__(self, upstream: Upstream, *, clock: Clock, queue_size: int, grace_s: float) -> None:
        self._upstream = upstream
        self._clock = clock
        self._queue_size = queue_size
        # The last consumer leaving closes the upstream only after this long (on `clock`), so a
        # quick re-subscribe reuses it. 0: close at once.
        self.grace_s = grace_s
        # The task group grace timers run in, while the owner runs (None: close at once).
        self.timers: asyncio.TaskGroup | None = None
        self._closing: dict[Subscription, asyncio.Task[None]] = {}
        self._consumers: dict[str, list[Consumer]] = defaultdict(list)
        self._refcount: dict[Subscription, int] = defaultdict(int)
        # Consumers of a venue's whole status feed (`watch_statuses`): every StreamStatus and Gap.
        self._status_watchers: dict[str, dict[Listening, Callable[[AnyEvent], None]]] = defaultdict(dict)
        # Streams the venue refused for good, until they close: a consumer joining one during the
        # grace period learns the refusal instead of waiting for data that will never come.
        self._refusals: dict[Subscription, VenueError] = {}
        self.events_out = 0

    # -- consumers ---------------------------------------------------------------------------
    def subscribe(self, sub: Subscription) -> Consumer:
        """A queue consumer of `sub`; `unsubscribe` it when done."""
        lossless = sub.channel.private
        queue: asyncio.Queue[AnyEvent] = asyncio.Queue(0 if lossless else self._queue_size)
        return self._attach(Consumer(sub, queue, lossless))

    def listen(
        self,
        sub: Subscription,
        on_event: Callable[[AnyEvent], None],
        on_refused: Callable[[VenueError], None],
    ) -> Listening:
        """A callback consumer of `sub` (see `Bridge.listen`) until the handle is closed."""
        consumer = self._attach(
            Consumer(sub, None, sub.channel.private, listener=on_event, on_refused=on_refused)
        )
        return Listening(lambda: self.unsubscribe(consumer))

    def watch_statuses(self, venue: str, on_event: Callable[[AnyEvent], None]) -> Listening:
        """`on_event` gets the current status of every open stream of `venue` now, then every
        change and `Gap`, until the handle is closed."""
        for sub in list(self._refcount):
            if sub.venue == venue:
                on_event(self._upstream.status_of(sub))
        watchers = self._status_watchers[venue]

        def unwatch() -> None:
            del watchers[handle]

        handle = Listening(unwatch)
        watchers[handle] = on_event
        return handle

    def hold(self, sub: Subscription) -> Listening:
        """Keep `sub` streamed upstream with no consumer until the handle is closed (the events
        still pass through the owner's services: e.g. every fill is journaled)."""
        if self._acquire(sub):
            try:
                self._upstream.open(sub)
            except BaseException:  # the venue cannot have it: nothing is held (nor to close)
                del self._refcount[sub]
                raise
        return Listening(lambda: self._release(sub))

    def _acquire(self, sub: Subscription) -> bool:
        """Count one more reference to `sub`; True if the upstream must be opened (else it is open)."""
        self._refcount[sub] += 1
        closing = self._closing.pop(sub, None)
        if closing is not None:  # re-subscribed within the grace period: reuse the open upstream
            closing.cancel()
            return False
        return self._refcount[sub] == 1

    def _attach(self, consumer: Consumer) -> Consumer:
        sub = consumer.sub
        self._consumers[sub.describe()].append(consumer)
        if self._acquire(sub):
            self._upstream.open(sub)
        else:
            self._replay_current(consumer)
        return consumer

    def _replay_current(self, consumer: Consumer) -> None:
        """A late joiner of a shared stream gets the current state, not a wait for the next change."""
        sub = consumer.sub
        for event in self._upstream.current_state(sub):
            self._deliver(consumer, event)
        consumer.refused = self._refusals.get(sub)
        if consumer.refused is not None and consumer.on_refused is not None:
            consumer.on_refused(consumer.refused)

    def unsubscribe(self, consumer: Consumer) -> None:
        sub = consumer.sub
        self._consumers[sub.describe()].remove(consumer)
        self._release(sub)

    def _release(self, sub: Subscription) -> None:
        """One reference to `sub` less: the last one closes the upstream (after the grace period)."""
        self._refcount[sub] -= 1
        if self._refcount[sub] == 0:
            del self._refcount[sub]
            if self.grace_s > 0 and self.timers is not None:
                self._closing[sub] = self.timers.create_task(
                    self._close_after_grace(sub), name=f"grace-{sub}"
                )
            else:
                self._close_upstream(sub)

    async def _close_after_grace(self, sub: Subscription) -> None:
        await self._clock.sleep(self.grace_s)
        if self._closing.get(sub) is asyncio.current_task():
            del self._closing[sub]
            self._close_upstream(sub)

    def _close_upstream(self, sub: Subscription) -> None:
        self._upstream.close(sub)
        self._refusals.pop(sub, None)

    # -- what is open ------------------------------------------------------------------------
    def is_open(self, sub: Subscription) -> bool:
        """Whether `sub` is streamed upstream now (consumed, or closing after its grace period)."""
        return sub in self._refcount or sub in self._closing

    def consumed(self) -> list[Subscription]:
        """Streams with at least one consumer (not those only held, `hold`)."""
        return [sub for sub in self._refcount if self._consumers.get(sub.describe())]

    def consumers(self, sub: Subscription) -> list[Consumer]:
        return list(self._consumers.get(sub.describe(), ()))

    def upstream_closing(self) -> list[Subscription]:
        """Upstream streams with no consumer left, open until their grace period ends."""
        return list(self._closing)

    def grace_timer(self, sub: Subscription) -> asyncio.Task[None] | None:
        """The timer that closes `sub` when its grace period ends (None: not closing)."""
        return self._closing.get(sub)

    def status_watchers(self, venue: str) -> int:
        return len(self._status_watchers.get(venue, ()))

    def forget_refusal(self, sub: Subscription) -> None:
        """`sub` is asked of the venue again: a consumer joining now waits for its answer."""
        self._refusals.pop(sub, None)

    def refusal(self, sub: Subscription) -> VenueError | None:
        """The venue's refusal of open stream `sub`, if it refused it for good."""
        return self._refusals.get(sub)

    # -- delivery ----------------------------------------------------------------------------
    def publish(self, event: AnyEvent) -> None:
        """Deliver `event` to the consumers of its topic (and a status or Gap to the watchers of
        its venue's status feed)."""
        consumers = self._consumers.get(topic_of(event))
        if consumers:
            # A copy: a listener may close (detach) while the event goes round.
            for consumer in tuple(consumers) if len(consumers) > 1 else consumers:
                self._deliver(consumer, event)
        if isinstance(event, StreamStatus | Gap):
            watchers = self._status_watchers.get(event.venue)
            if watchers:
                for watch in tuple(watchers.values()):
                    watch(event)

    def publish_to(self, sub: Subscription, event: AnyEvent) -> None:
        """Deliver `event` to the consumers of `sub`, a stream that gathers events of other topics
        (the greeks of every expiry get each expiry's events, whose own topic names the expiry)."""
        for consumer in tuple(self._consumers.get(sub.describe(), ())):
            self._deliver(consumer, event)

    def refused(self, sub: Subscription, error: VenueError) -> None:
        """The venue will never serve `sub` (unknown pair, no permission…): its consumers'
        iterators end with that error once they have read what came before it."""
        if self.is_open(sub):
            self._refusals[sub] = error
        for consumer in tuple(self._consumers.get(sub.describe(), ())):
            consumer.refused = error
            # Wake a consumer blocked on an empty queue: the STALE status saying why goes first.
            if consumer.queue is None or consumer.queue.empty():
                self._deliver(consumer, self._upstream.status_of(sub))
            if consumer.on_refused is not None:
                consumer.on_refused(error)

    def stopped(self, reason: str) -> None:
        """The owner stopped after an internal error: every consumer is told its data is stale."""
        for consumers in self._consumers.values():
            for consumer in consumers:
                self._deliver(
                    consumer,
                    StreamStatus(
                        venue=consumer.sub.venue,
                        ts=self._clock.time(),
                        stream=consumer.sub.describe(),
                        state=StreamState.STALE,
                        reason=reason,
                    ),
                )

    def _deliver(self, consumer: Consumer, event: AnyEvent) -> None:
        queue = consumer.queue
        if queue is None:
            self.events_out += 1
            try:
                consumer.listener(event)  # type: ignore[misc]
            except Exception:  # the consumer's bug: the other consumers still get the event
                logger.exception(
                    "a listener of %s failed on %s", consumer.sub.describe(), type(event).__name__
                )
            return
        if queue.full():
            self._make_room(consumer, event)
        queue.put_nowait(event)
        self.events_out += 1

    def _make_room(self, consumer: Consumer, event: AnyEvent) -> None:
        """Drop the oldest events so that a `Gap` naming them, the stream's latest status (if one
        was among them) and `event` fit. A Gap dropped again widens the new one: the window a
        consumer reads always reaches back to the first event it lost."""
        queue = consumer.queue
        assert queue is not None
        start = event.ts
        status: StreamStatus | None = None
        dropped = 0
        book = consumer.sub.channel is Channel.BOOK
        while queue.qsize() > queue.maxsize - (4 if book else 3):
            lost = queue.get_nowait()
            match lost:
                case Gap(stream=stream) if stream == consumer.sub.describe():
                    start = min(start, lost.start)
                case StreamStatus():
                    status = lost
                    start = min(start, lost.ts)
                case _:
                    start = min(start, lost.ts)
                    dropped += 1
        consumer.dropped += dropped
        if consumer.dropped == dropped:  # first overflow of this consumer
            logger.warning(
                "%s: slow consumer of %s: oldest events dropped (a Gap tells it which window)",
                event.venue,
                consumer.sub.describe(),
            )
        queue.put_nowait(
            Gap(
                venue=event.venue,
                ts=self._clock.time(),
                stream=consumer.sub.describe(),
                start=start,
                end=event.ts,
                reason=f"consumer too slow: {consumer.dropped} events dropped so far",
            )
        )
        if status is not None:
            queue.put_nowait(status)
        if book:
            # Lost updates leave the consumer's book wrong: give it the whole book again.
            snapshot = self._upstream.book_snapshot(consumer.sub)
            if snapshot is not None:
                queue.put_nowait(snapshot)
