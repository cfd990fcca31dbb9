"""The one connection supervisor every venue stream runs under.

It owns a pure venue session and a WebSocket URL and keeps them joined for as long as it runs:

    wait for ≥1 subscription ─▶ hooks.before_connect (e.g. fetch a token) ─▶ connect
      ─▶ session.connection_made (replays every subscription from its original arguments)
      ─▶ pump: socket text → session → events (to `emit`) / signals (handled here) / frames (sent)
         and the session's timer (idle watchdog, pings) on the injected clock
      ─▶ on any failure: statuses → RECONNECTING, REST polling starts after `poll_after`
         (statuses → POLLING), jittered capped backoff, and around again. It never gives up.

Statuses carry the cause: a new reason for the same state is published too (why a stream is down
matters as much as that it is). `degrade(reason)` holds live streams STALE while something their data
depends on fails (the connector's REST reconciliation); `retry_now()` cuts a backoff short when what
the last attempt lacked has come (a new token). `health()` reports the connection and its
subscriptions as a typed `StreamHealth`, from which the connectors compose their venue's health.

Retry vs fatal: every failure is retried (a venue that refuses us now may accept us later), but
non-retryable ones (bad key, missing permission) are logged at ERROR with their remedy (once: the
same one again is DEBUG until the streams were live) and the backoff jumps straight to its cap, so
a misconfigured key does not hammer the venue.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from brokerbridge.core.backoff import BackoffPolicy
from brokerbridge.core.clock import Clock, race, sleep_unless
from brokerbridge.core.errors import BrokerBridgeError, TransportError, VenueError
from brokerbridge.core.events import AnyEvent, Channel, Gap, StreamState, StreamStatus, Subscription
from brokerbridge.core.health import StreamHealth, StreamMode
from brokerbridge.core.log_limit import LogLimiter, clip
from brokerbridge.core.signals import (
    BadFrame,
    ReconnectNeeded,
    Resyncing,
    Signal,
    Subscribed,
    SubscribeFailed,
    SystemStatus,
)
from brokerbridge.io.ws import Connection, connect

logger = logging.getLogger(__name__)

Emit = Callable[[AnyEvent], None]
Connect = Callable[[str], AbstractAsyncContextManager[Connection]]


class Session(Protocol):
    @property
    def subscriptions(self) -> tuple[Subscription, ...]: ...

    def connection_made(self, now: float) -> None: ...

    def connection_lost(self, now: float) -> None: ...

    def receive_text(self, text: str, now: float) -> None: ...

    def events_received(self) -> list[AnyEvent]: ...

    def signals_received(self) -> list[Signal]: ...

    def data_to_send(self) -> list[str]: ...

    def next_deadline(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...


class Hooks(Protocol):
    """What a venue adds around the generic loop."""

    async def before_connect(self) -> None: ...

    async def on_connected(self) -> None: ...

    async def on_signal(self, signal: Signal) -> None: ...

    async def poll(self, subs: tuple[Subscription, ...]) -> list[AnyEvent]: ...

    def pollable(self, sub: Subscription) -> bool: ...


class _Idle(Exception):
    """The last subscription went away: close the socket without calling it a failure."""


class _Reconnect(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# A subscription in one of these states has had no answer on the current connection yet.
_UNANSWERED = frozenset({None, StreamState.CONNECTING, StreamState.RECONNECTING, StreamState.POLLING})


class ConnectionSupervisor:
    def __init__(
        self,
        *,
        venue: str,
        name: str,
        url: str,
        session: Session,
        hooks: Hooks,
        emit: Emit,
        clock: Clock,
        backoff: BackoffPolicy,
        poll_after: float,
        poll_interval: float,
        rng: random.Random | None = None,
        connector: Connect = connect,
        failure_message: str = "connection attempt failed",
        on_refused: Callable[[Subscription, VenueError], None] | None = None,
    ) -> None:
        self.venue = venue
        self.name = name
        self.url = url
        self.session = session
        self._hooks = hooks
        self._emit = emit
        self._clock = clock
        self._backoff = backoff
        self._rng = rng or random.Random()
        self._poll_after = poll_after
        self._poll_interval = poll_interval
        self._connect = connector
        self._failure_message = failure_message
        self._on_refused = on_refused
        self._wake = asyncio.Event()  # subscriptions were added
        self._outgoing = asyncio.Event()  # the session has frames to send outside a read/timer turn
        self._reconnect_reason: str | None = None
        self._conn: Connection | None = None
        # IDLE until a stream is wanted (and again after the last one went): nothing is connecting.
        self.state = StreamState.IDLE
        self.mode: StreamMode = "ws"
        self.reconnects = 0
        self.connected = False
        self.last_message_at: float | None = None
        # Why the last attempt or connection ended, or why streams wait; None once live again or
        # when the connection was closed because nobody needs it (not an error).
        self.last_error: str | None = None
        self.last_exception: BaseException | None = None  # why the last attempt or connection ended
        self._sub_states: dict[Subscription, StreamState] = {}
        self._sub_reasons: dict[Subscription, str] = {}  # the reason of each stream's last status
        self._retry_now = asyncio.Event()  # cuts the backoff short (e.g. a credential came)
        # Something the live streams depend on is failing (e.g. REST reconciliation): they show
        # STALE with this reason until it is cleared; the subscriptions held STALE for it.
        self.degraded: str | None = None
        # True while `degrade` publishes statuses: they show REST failing (or answering again),
        # not the subscriptions, which are as unbroken as before.
        self.showing_degraded = False
        self._held: set[Subscription] = set()
        self._poller: asyncio.Task[None] | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._maintenance: str | None = None  # venue's non-online system status, while it lasts
        self._polling = False  # REST polling is serving the streams right now
        self._down_since: float | None = None
        self._went_live = False
        self._refusals_log = LogLimiter(logger, clock.monotonic)
        self._failure_logged: str | None = None  # the last failure logged since the streams were live

    # -- called by the connector when subscriptions change ------------------------------------
    def notify(self) -> None:
        """Subscriptions changed: wake the loop; the connection's writer sends what was queued."""
        self._wake.set()
        self._outgoing.set()

    def request_reconnect(self, reason: str) -> None:
        """Close the live connection and open a new one (e.g. the credential on it was replaced)."""
        if self.connected:
            self._reconnect_reason = reason
            self._outgoing.set()

    def retry_now(self) -> None:
        """What the last attempt lacked is here (a new token): if backing off, reconnect now."""
        self._retry_now.set()

    def degrade(self, reason: str | None) -> None:
        """`reason`: something the live streams' data depends on is failing (REST reconciliation
        after a reconnect) — LIVE streams show STALE with it, and so does a stream that goes live
        while it lasts. None: it is fixed — those streams are LIVE again."""
        if reason == self.degraded:
            return
        self.degraded = reason
        self.showing_degraded = True
        try:
            if reason is not None:
                for sub in self.session.subscriptions:
                    if self._sub_states.get(sub) is StreamState.LIVE or sub in self._held:
                        self._held.add(sub)
                        self._set_sub(sub, StreamState.STALE, reason, new_reason=True)
                return
            held, self._held = self._held, set()
            if self._maintenance is None:
                for sub in self.session.subscriptions:
                    if sub in held and self._sub_states.get(sub) is StreamState.STALE:
                        self._set_sub(sub, StreamState.LIVE, "reconciled with REST")
        finally:
            self.showing_degraded = False

    def explain(self, reason: str) -> None:
        """Why the streams that are not live are not (e.g. the token they wait for is refused):
        it becomes `last_error`, and their current state is published again with it — by the
        REST poller's next round while it serves them."""
        self.last_error = reason
        if self._polling:
            return
        for sub in self.session.subscriptions:
            state = self._sub_states.get(sub)
            if state is not None and state is not StreamState.LIVE:
                self._set_sub(sub, state, reason, new_reason=True)

    def forget(self, sub: Subscription) -> None:
        """A stream nobody wants any more: its next subscription starts with a fresh status."""
        self._sub_states.pop(sub, None)
        self._sub_reasons.pop(sub, None)
        self._held.discard(sub)

    def sub_state(self, sub: Subscription) -> StreamState:
        """A subscription the venue has not answered yet is CONNECTING even on a live socket: the
        venue may still refuse it (an unknown symbol must not look live first)."""
        state = self._sub_states.get(sub)
        if state is not None:
            return state
        # Wanted now: on an idle connection it is being opened (the loop wakes for it).
        return StreamState.CONNECTING if self.state in (StreamState.LIVE, StreamState.IDLE) else self.state

    def sub_reason(self, sub: Subscription) -> str | None:
        """The reason of `sub`'s last status (None: it had none yet)."""
        return self._sub_reasons.get(sub)

    @property
    def health_state(self) -> StreamState:
        """The connection's state as health reports it: STALE while connected but `degraded`."""
        if self.degraded is not None and self.state is StreamState.LIVE:
            return StreamState.STALE
        if self.state is StreamState.IDLE and self.session.subscriptions:
            return StreamState.CONNECTING  # wanted: the loop is waking to open it
        return self.state

    @property
    def problem(self) -> str | None:
        """What is wrong now (`degraded`), else why the last attempt or connection ended."""
        return self.degraded or self.last_error

    def health(self) -> StreamHealth:
        """The connection and each of its subscriptions, as health reports them now."""
        last = self.last_message_at
        return StreamHealth(
            state=self.health_state,
            mode=self.mode,
            connected=self.connected,
            reconnects=self.reconnects,
            seconds_since_last_message=None if last is None else round(self._clock.monotonic() - last, 3),
            last_error=self.problem,
            subscriptions={sub.describe(): self.sub_state(sub) for sub in self.session.subscriptions},
            url=self.url,
        )

    # -- the loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        """Run until cancelled. The REST poller lives in this call's task group."""
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            try:
                await self._loop()
            finally:
                self._stop_polling()
                self._tasks = None

    async def _loop(self) -> None:
        delays = self._backoff.delays(self._rng)
        while True:
            await self._wait_for_subscriptions()
            attempt = StreamState.CONNECTING if self.reconnects == 0 else StreamState.RECONNECTING
            self._set_all(attempt, "connecting to " + self.url)
            self._went_live = False
            try:
                await self._connect_once()
                reason = "connection closed"
            except _Idle:
                # Nobody wants anything from this endpoint any more: closed on purpose — idle, and
                # no error (the last one is kept in `last_exception` for whoever reads it).
                self._closed(reason=None)
                self.state = StreamState.IDLE
                self.last_error = None  # released on purpose: nothing went wrong
                logger.info("%s %s: closed %s (no subscriptions left)", self.venue, self.name, self.url)
                continue
            except _Reconnect as exc:
                reason = exc.reason
                self.last_exception = exc.__cause__ or exc
            except BrokerBridgeError as exc:
                reason = str(exc)
                self.last_exception = exc
                self._log_failure(exc)
                if not exc.retryable:
                    delays = self._backoff_at_cap()
            except Exception as exc:  # a bug must not end the stream silently
                reason = f"internal error: {type(exc).__name__}: {exc}"
                self.last_exception = exc
                logger.exception("%s %s: unexpected failure (a bug; retrying)", self.venue, self.name)
                # Retrying a bug at once would only loop: go slow, and do not count it as a
                # healthy spell that resets the backoff.
                self._went_live = False
                delays = self._backoff_at_cap()
            # Down: mark every stream, let REST polling take over, back off, go around.
            if self.connected:
                logger.warning("%s %s: connection to %s lost: %s", self.venue, self.name, self.url, reason)
            self._closed(reason)
            if self._went_live:
                delays = self._backoff.delays(self._rng)  # reset after a stream was live again
            if self._down_since is None:
                self._down_since = self._clock.time()
            self.reconnects += 1
            # Each new cause reaches consumers (the first one may be just "connection closed").
            self._set_all(StreamState.RECONNECTING, reason, new_reason=True)
            if self._poller is None and self._tasks is not None:
                self._poller = self._tasks.create_task(self._poll_while_down(), name=f"{self.name}-poller")
            delay = next(delays)
            if delay > 0:
                logger.info("%s %s: reconnecting in %.1fs", self.venue, self.name, delay)
            self._retry_now.clear()
            await sleep_unless(self._clock, delay, self._retry_now)

    def _closed(self, reason: str | None) -> None:
        self.connected = False
        self._conn = None
        self._maintenance = None
        self._held.clear()  # the streams leave LIVE/STALE now; `degraded` still holds the next LIVE
        self._reconnect_reason = None  # asked of the connection that just ended, not of the next
        self.session.connection_lost(self._clock.monotonic())
        self.last_error = reason

    def _stop_polling(self) -> None:
        self._polling = False
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None

    def _backoff_at_cap(self) -> Iterator[float]:
        cap = self._backoff.cap
        while True:
            yield self._rng.uniform(cap / 2, cap)

    async def _wait_for_subscriptions(self) -> None:
        while not self.session.subscriptions:
            self._wake.clear()
            await self._wake.wait()

    async def _connect_once(self) -> None:
        await self._hooks.before_connect()
        async with self._connect(self.url) as conn:
            self._conn = conn
            self.connected = True
            now = self._clock.monotonic()
            self.last_message_at = now
            self.session.connection_made(now)
            logger.info("%s %s: connected to %s", self.venue, self.name, self.url)
            await self._hooks.on_connected()
            self._outgoing.set()
            await self._pump(conn)

    async def _pump(self, conn: Connection) -> None:
        """Read, time and write until one of them stops the connection (by raising).

        Three tasks owned right here (not a TaskGroup: on Python 3.11 a TaskGroup whose child
        fails leaves a cancellation mark on this task that cannot be told from a real stop)."""
        loop = asyncio.get_running_loop()
        tasks = {
            loop.create_task(self._read(conn), name=f"{self.name}-read"),
            loop.create_task(self._timer(), name=f"{self.name}-timer"),
            loop.create_task(self._writer(), name=f"{self.name}-write"),
        }
        # Each runs until it raises: the first to end says why the connection stops.
        for task in await race(*tasks):
            if not task.cancelled() and (exc := task.exception()) is not None:
                raise exc

    def _report_gap(self, down_since: float) -> None:
        """Trades and candles are not replayed by a reconnect: name the window they may have lost."""
        end = self._clock.time()
        for sub in self.session.subscriptions:
            if sub.channel in (Channel.TRADES, Channel.CANDLES):
                self._emit(
                    Gap(
                        venue=self.venue,
                        ts=end,
                        stream=sub.describe(),
                        start=down_since,
                        end=end,
                        reason="stream was disconnected",
                    )
                )

    async def _read(self, conn: Connection) -> None:
        while True:
            try:
                text = await conn.recv_text()
            except TransportError as exc:
                raise _Reconnect(exc.message) from exc
            now = self._clock.monotonic()
            self.last_message_at = now
            self.session.receive_text(text, now)
            self._outgoing.set()

    async def _timer(self) -> None:
        while True:
            deadline = self.session.next_deadline()
            now = self._clock.monotonic()
            if deadline is None:
                deadline = now + 1.0
            if deadline > now:
                await self._clock.sleep(deadline - now)
            self.session.handle_timer(self._clock.monotonic())
            self._outgoing.set()

    async def _writer(self) -> None:
        """The one task that acts on what the session produced: events, signals, frames — in order."""
        while True:
            await self._outgoing.wait()
            self._outgoing.clear()
            await self._flush()
            if self._reconnect_reason is not None:
                reason, self._reconnect_reason = self._reconnect_reason, None
                raise _Reconnect(reason)
            if not self.session.subscriptions:
                raise _Idle

    async def _flush(self) -> None:
        for event in self.session.events_received():
            if isinstance(event, StreamStatus):
                self._track(event)
            self._emit(event)
        for signal in self.session.signals_received():
            await self._handle_signal(signal)
        await self._flush_frames()

    async def _flush_frames(self) -> None:
        conn = self._conn
        if conn is None:
            return
        for frame in self.session.data_to_send():
            try:
                await conn.send_text(frame)
            except TransportError as exc:
                raise _Reconnect(exc.message) from exc

    async def _handle_signal(self, signal: Signal) -> None:
        match signal:
            case Subscribed(sub=sub):
                self._went_live = True
                self._failure_logged = None
                self.state = StreamState.LIVE
                was_polling = self._poller is not None
                self.last_error = None  # live again: why the last connection ended is history now
                self._stop_polling()
                # Waiting: not answered on this connection yet. A stream held `stale` by a failing
                # reconciliation is answered and its data flows (chaos seed 4455: taken for
                # waiting, it set off polling that turned both private streams to `polling`, a
                # state the end of the reconciliation's failure does not bring back to live).
                waiting = any(
                    other != sub and other not in self._held and self._sub_states.get(other) in _UNANSWERED
                    for other in self.session.subscriptions
                )
                if was_polling and waiting and self._tasks is not None:
                    # Others still wait for data (Primary's order reports are "subscribed" as soon
                    # as asked, with nothing from the venue; a silent socket then looked live and
                    # its market data went unpolled): REST keeps serving them from `poll_after` on.
                    self._poller = self._tasks.create_task(
                        self._poll_while_down(), name=f"{self.name}-poller"
                    )
                if self._down_since is not None:
                    self._report_gap(self._down_since)
                    self._down_since = None
                if self._maintenance is not None:
                    self._set_sub(sub, StreamState.STALE, f"venue system status: {self._maintenance}")
                elif self.degraded is not None:
                    self._held.add(sub)
                    self._set_sub(sub, StreamState.STALE, self.degraded, new_reason=True)
                else:
                    self._set_sub(sub, StreamState.LIVE, "subscribed")
            case SubscribeFailed(sub=sub, error=error):
                # Clients choose what is refused and how often: quoted, bounded, rate-limited.
                self._refusals_log.log(
                    logging.WARNING,
                    type(error).__name__,
                    "%s %s: subscription %s refused: %s",
                    self.venue,
                    self.name,
                    clip(sub.describe()),
                    clip(error, 200),
                )
                self._set_sub(sub, StreamState.STALE, str(error))
                if not error.retryable and self._on_refused is not None:
                    self._on_refused(sub, error)
            case ReconnectNeeded(reason=reason):
                raise _Reconnect(reason)
            case Resyncing(sub=sub, reason=reason):
                logger.warning("%s %s: resyncing %s: %s", self.venue, self.name, sub.describe(), reason)
                self._sub_states[sub] = StreamState.RESYNCING
            case SystemStatus(system=system):
                self._system_status(system)
            case BadFrame(error=error):
                logger.warning("%s %s: skipped a frame: %s", self.venue, self.name, clip(error.message, 200))
        await self._hooks.on_signal(signal)

    def _system_status(self, system: str) -> None:
        """Maintenance keeps the socket open but no data flows: say so on every live stream."""
        if system != "online":
            logger.warning("%s %s: venue reports system status %r", self.venue, self.name, system)
            self._maintenance = system
            for sub in self.session.subscriptions:
                if self._sub_states.get(sub) is StreamState.LIVE:
                    self._set_sub(sub, StreamState.STALE, f"venue system status: {system}")
        elif self._maintenance is not None:
            logger.info("%s %s: venue is online again", self.venue, self.name)
            self._maintenance = None
            for sub in self.session.subscriptions:
                if self._sub_states.get(sub) is not StreamState.STALE:
                    continue
                if self.degraded is not None:
                    self._held.add(sub)
                    self._set_sub(sub, StreamState.STALE, self.degraded, new_reason=True)
                else:
                    self._set_sub(sub, StreamState.LIVE, "venue online again")

    async def _poll_while_down(self) -> None:
        """Serve the streams from REST while the socket is down; STALE where REST cannot help."""
        await self._clock.sleep(self._poll_after)
        while True:
            # Those the socket serves again are left to it, and so are those it serves while a
            # reconciliation fails (held `stale` until it succeeds, then live again).
            subs = tuple(
                s
                for s in self.session.subscriptions
                if self._sub_states.get(s) is not StreamState.LIVE and s not in self._held
            )
            if not subs:
                await self._clock.sleep(self._poll_interval)
                continue
            reason = f"stream down ({self.last_error}); serving REST polls"
            try:
                events = await self._hooks.poll(subs)
                ok = True
            except BrokerBridgeError as exc:
                logger.warning("%s %s: REST polling failed: %s", self.venue, self.name, exc)
                events, ok, reason = [], False, f"stream down and REST polling failing: {exc.message}"
            except Exception as exc:  # a bug in polling must not end polling silently
                logger.exception("%s %s: REST polling failed unexpectedly (a bug)", self.venue, self.name)
                events, ok, reason = [], False, f"REST polling failing: {type(exc).__name__}"
            self._polling = True
            self.mode = "polling" if ok else "down"
            for sub in subs:
                if ok and self._hooks.pollable(sub):
                    self._set_sub(sub, StreamState.POLLING, reason, new_reason=True)
                else:
                    why = reason if not ok else f"stream down ({self.last_error}); no REST equivalent"
                    self._set_sub(sub, StreamState.STALE, why, new_reason=True)
            for event in events:
                self._emit(event)
            await self._clock.sleep(self._poll_interval)

    # -- statuses ----------------------------------------------------------------------------
    def _track(self, status: StreamStatus) -> None:
        for sub in self.session.subscriptions:
            if sub.describe() == status.stream:
                self._sub_states[sub] = status.state

    def _set_all(self, state: StreamState, reason: str, *, new_reason: bool = False) -> None:
        self.state = state
        for sub in self.session.subscriptions:
            if self._polling and self._sub_states.get(sub) is not StreamState.LIVE:
                # Reconnect attempts go on behind the polls; consumers keep seeing POLLING until live.
                continue
            self._set_sub(sub, state, reason, new_reason=new_reason)

    def _set_sub(
        self, sub: Subscription, state: StreamState, reason: str, *, new_reason: bool = False
    ) -> None:
        """Publish `sub`'s status if its state changed — or, with `new_reason`, its reason (a new
        cause of the same state: why a stream is down matters as much as that it is)."""
        if self._sub_states.get(sub) is state and (not new_reason or self._sub_reasons.get(sub) == reason):
            return
        self._sub_states[sub] = state
        self._sub_reasons[sub] = reason
        if state is StreamState.LIVE:
            self.mode = "ws"
        self._emit(
            StreamStatus(
                venue=self.venue,
                ts=self._clock.time(),
                stream=sub.describe(),
                state=state,
                reason=reason,
                reconnects=self.reconnects,
            )
        )

    def _log_failure(self, exc: BrokerBridgeError) -> None:
        # A refusal that retrying cannot change (a missing permission, refused on every attempt)
        # is one piece of news: ERROR once until the streams are live again, then DEBUG (the
        # statuses keep carrying it). Passing failures stay a WARNING each: they are the outage.
        text = str(exc)
        level = logging.WARNING if exc.retryable else logging.ERROR
        if not exc.retryable:
            if text == self._failure_logged:
                level = logging.DEBUG
            self._failure_logged = text
        logger.log(level, "%s %s: %s (%s): %s", self.venue, self.name, self._failure_message, self.url, exc)
