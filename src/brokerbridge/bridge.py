"""`Bridge`: the in-process Python API for bots.

    async with Bridge(load_config()) as bridge:
        async for event in bridge.subscribe("kraken", "book", "BTC/USD", depth=10):
            ...

One upstream subscription per distinct stream, shared by every local subscriber (reference
counted); each subscriber gets its own bounded queue so a slow consumer never blocks the venue
session. Market data that overflows a queue drops the oldest event and tells the consumer with a
`Gap`; private events (balances, executions) are never dropped. Fills and order updates pass the
executions journal first (no duplicates across reconnects or restarts: each new fill is written
to the on-disk journal, `config.journal_path`, before anyone sees it), balances the balance book
(never 0 because a stream is down: read `balances()` for values marked stale).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from brokerbridge.core.clock import Clock, SystemClock
from brokerbridge.core.config import Config
from brokerbridge.core.errors import (
    BrokerBridgeError,
    ConfigError,
    InvalidRequest,
    ServiceUnavailable,
    TransportError,
    UnknownChannel,
    UnknownVenue,
    VenueError,
)
from brokerbridge.core.events import (
    AnyEvent,
    AssetBalance,
    BalanceSnapshot,
    BalanceUpdate,
    BookSnapshot,
    BookUpdate,
    Candle,
    Channel,
    Fill,
    Gap,
    Instrument,
    OrderUpdate,
    Position,
    SessionStats,
    Side,
    Source,
    StreamState,
    StreamStatus,
    Subscription,
    Ticker,
    Trade,
)
from brokerbridge.core.health import VenueHealth
from brokerbridge.io.connector import Connector
from brokerbridge.io.journal_store import JournalError, JournalStore
from brokerbridge.io.kraken.connector import KrakenConnector
from brokerbridge.io.transports import Transports
from brokerbridge.services.balances import BalanceBook, BalanceView
from brokerbridge.services.executions import ExecutionJournal
from brokerbridge.services.market_cache import CANDLES_KEPT, TRADES_KEPT, MarketCache

logger = logging.getLogger(__name__)


def topic_of(event: AnyEvent) -> str:
    """The `Subscription.describe()` an event belongs to."""
    match event:
        case Ticker(symbol=s):
            return f"{event.venue}:ticker:{s}"
        case BookSnapshot(symbol=s, depth=d) | BookUpdate(symbol=s, depth=d):
            return f"{event.venue}:book:{s}:depth={d}"
        case Trade(symbol=s):
            return f"{event.venue}:trades:{s}"
        case Candle(symbol=s, interval=i):
            return f"{event.venue}:candles:{s}:interval={i}"
        case SessionStats(symbol=s):
            return f"{event.venue}:stats:{s}"
        case Instrument():
            return f"{event.venue}:instruments"
        case Position():
            return f"{event.venue}:positions"
        case BalanceSnapshot() | BalanceUpdate():
            return f"{event.venue}:balances"
        case OrderUpdate() | Fill():
            return f"{event.venue}:executions"
        case StreamStatus(stream=s) | Gap(stream=s):
            return s
    raise TypeError(f"no topic for {type(event).__name__}")  # pragma: no cover


@dataclass
class _Subscriber:
    sub: Subscription
    queue: asyncio.Queue[AnyEvent] | None  # None: a listener (`Bridge.listen`)
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


@dataclass
class VenueState:
    balances: BalanceBook = field(default_factory=BalanceBook)
    journal: ExecutionJournal = field(default_factory=ExecutionJournal)
    scope: str = ""  # the account on the venue, as the on-disk journal keys it


RESTORED_FILLS = 10_000  # fills per venue read back from the journal at start (dedupe window)
# An unanswered submit not found at the venue this long after it was sent never arrived.
UNKNOWN_GIVE_UP_S = 60.0


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """What the Bridge holds for one market stream at one moment (`Bridge.market_snapshot`)."""

    status: StreamStatus
    ticker: Ticker | None
    stats: SessionStats | None
    book: BookSnapshot | None  # book streams: the verified book, checksum included (Kraken)
    trades: list[Trade]  # oldest first
    candles: list[Candle]  # oldest first


class Bridge:
    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        queue_size: int = 10_000,
        grace_s: float = 0.0,
        journal_store: JournalStore | None = None,
        unknown_give_up_s: float = UNKNOWN_GIVE_UP_S,
        transports: Transports | None = None,
    ) -> None:
        if queue_size < 4:
            # Room for a Gap, the stream's status, a fresh book and the newest event.
            raise ConfigError(f"queue_size must be at least 4, got {queue_size}")
        self.config = config
        self.clock = clock or SystemClock()
        # How the connectors reach the venues: the network, unless a test joins them in memory.
        self.transports = transports or Transports()
        self._queue_size = queue_size
        if grace_s < 0:
            raise ConfigError(f"grace_s must not be negative, got {grace_s}")
        # The last subscriber leaving closes the upstream only after this long (bridge clock), so a
        # quick re-subscribe reuses it. 0: close at once.
        self.grace_s = grace_s
        self._closing: dict[Subscription, asyncio.Task[None]] = {}
        self._timers: asyncio.TaskGroup | None = None
        self._subscribers: dict[str, list[_Subscriber]] = defaultdict(list)
        self._refcount: dict[Subscription, int] = defaultdict(int)
        # Consumers of a venue's whole status feed (`statuses`): every StreamStatus and Gap.
        self._status_watchers: dict[str, dict[Listening, Callable[[AnyEvent], None]]] = defaultdict(dict)
        self.connectors: dict[str, Connector] = {}
        self.state: dict[str, VenueState] = {}
        self._runner: asyncio.Task[None] | None = None
        # The on-disk fills journal: injected, or opened from config.journal_path at start.
        self.journal_store = journal_store
        self._owns_store = journal_store is None
        self._settling: set[str] = set()  # venues with a reconciliation of UNKNOWN orders under way
        self.unknown_give_up_s = unknown_give_up_s
        self.events_in = 0
        self.events_out = 0
        # Last ticker/stats, recent trades and candles of the open market streams (REST snapshots,
        # late joiners).
        self.market = MarketCache()
        # Streams the venue refused for good, until they close: a consumer joining one during the
        # grace period learns the refusal instead of waiting for data that will never come.
        self._refusals: dict[Subscription, VenueError] = {}
        # (venue, stream) → how often it went RESYNCING / reported a Gap (for /metrics).
        self.resyncs: Counter[tuple[str, str]] = Counter()
        self.gaps: Counter[tuple[str, str]] = Counter()

    # -- lifetime ----------------------------------------------------------------------------
    async def __aenter__(self) -> Bridge:
        if self.journal_store is None:
            self.journal_store = JournalStore(self.config.journal_path)
        for connector in self._make_connectors():
            self.connectors[connector.venue] = connector
            self.state[connector.venue] = self._restore(connector)
        self._runner = asyncio.get_running_loop().create_task(self._run(), name="bridge")
        return self

    def _restore(self, connector: Connector) -> VenueState:
        """Seed the dedupe window from the on-disk journal: fills published before a restart stay
        published once, and the connector learns what it already reported (e.g. per-order totals)."""
        assert self.journal_store is not None
        scope = str(getattr(connector, "journal_scope", connector.venue))
        state = VenueState(scope=scope)
        stored = self.journal_store.fills(connector.venue, scope, limit=RESTORED_FILLS)
        for fill in stored:
            state.journal.record_fill(fill)
        restore = getattr(connector, "restore_fills", None)
        if stored and restore is not None:
            restore(stored)
        if stored:
            logger.info("%s: %d fills restored from the journal", connector.venue, len(stored))
        return state

    def _make_connectors(self) -> list[Connector]:
        net = self.transports
        connectors: list[Connector] = [
            KrakenConnector(
                self.config.kraken,
                emit=self._on_event,
                clock=self.clock,
                on_refused=self._on_refused,
                http=net.http(
                    timeout=self.config.kraken.request_timeout,
                    deadline=self.config.kraken.request_deadline,
                    clock=self.clock,
                ),
                ws_connect=net.ws_connect,
            )
        ]
        if self.config.primary is not None:
            from brokerbridge.io.primary.connector import PrimaryConnector

            connectors.append(
                PrimaryConnector(
                    self.config.primary,
                    emit=self._on_event,
                    clock=self.clock,
                    on_refused=self._on_refused,
                    http=net.http(
                        timeout=self.config.primary.request_timeout,
                        deadline=self.config.primary.request_deadline,
                        clock=self.clock,
                    ),
                    ws_connect=net.ws_connect,
                )
            )
        return connectors

    async def _run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tasks:
                self._timers = tasks
                for conn in self.connectors.values():
                    tasks.create_task(conn.run(), name=f"{conn.venue}-connector")
        except Exception as exc:
            # Our bug: say so loudly and tell every consumer its data is stale, rather than go quiet.
            logger.exception("bridge stopped after an internal error")
            for subscribers in self._subscribers.values():
                for subscriber in subscribers:
                    self._deliver(
                        subscriber,
                        StreamStatus(
                            venue=subscriber.sub.venue,
                            ts=self.clock.time(),
                            stream=subscriber.sub.describe(),
                            state=StreamState.STALE,
                            reason=f"bridge stopped after an internal error: {exc!r}",
                        ),
                    )
            raise

    async def __aexit__(self, *exc_info: Any) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        for conn in self.connectors.values():
            await conn.aclose()
        if self._owns_store and self.journal_store is not None:
            self.journal_store.close()
            self.journal_store = None

    def connector(self, venue: str) -> Connector:
        try:
            return self.connectors[venue]
        except KeyError:
            raise UnknownVenue(
                f"unknown venue {venue!r}",
                venue=venue,
                remedy=f"venues: {', '.join(sorted(self.connectors))}",
            ) from None

    # -- consuming ---------------------------------------------------------------------------
    async def subscribe(
        self,
        venue: str,
        channel: str | Channel,
        symbol: str | None = None,
        *,
        depth: int = 10,
        interval: int = 1,
    ) -> AsyncIterator[AnyEvent]:
        """Yield the stream's events (data, `StreamStatus`, `Gap`) until the caller stops iterating."""
        sub = self.subscription(venue, channel, symbol, depth=depth, interval=interval)
        subscriber = self._attach(sub)
        queue = subscriber.queue
        assert queue is not None
        try:
            while True:
                if subscriber.refused is not None and queue.empty():
                    raise subscriber.refused
                yield await queue.get()
        finally:
            self._detach(subscriber)

    def listen(
        self,
        sub: Subscription,
        on_event: Callable[[AnyEvent], None],
        on_refused: Callable[[VenueError], None],
    ) -> Listening:
        """Deliver stream `sub` (from `subscription()`) by calling `on_event` for every event —
        the current state first, as `subscribe` gives it — until the handle is closed.

        For fan-out to many consumers (the server's clients): no queue and no task per consumer,
        so `on_event` runs inside the venue's event path and must not block or raise (an exception
        is logged and the delivery skipped). `on_refused` is called once if the venue refuses the
        stream for good (after the STALE status saying why); the caller then closes the handle.
        Nothing is dropped here: the consumer owns its back-pressure."""
        subscriber = self._attach(sub, listener=on_event, on_refused=on_refused)
        return Listening(lambda: self._detach(subscriber))

    async def statuses(self, venue: str) -> AsyncIterator[AnyEvent]:
        """A venue's status feed: the current status of every open stream, then every change
        (`StreamStatus`) and every `Gap` of any of its streams, until the caller stops iterating."""
        queue: asyncio.Queue[AnyEvent] = asyncio.Queue()
        watching = self.watch_statuses(venue, queue.put_nowait)  # a few per reconnect: bounded by the venue
        try:
            while True:
                yield await queue.get()
        finally:
            watching.close()

    def watch_statuses(self, venue: str, on_event: Callable[[AnyEvent], None]) -> Listening:
        """`statuses` by calls: `on_event` gets the current status of every open stream of `venue`
        now, then every change and `Gap`, until the handle is closed."""
        connector = self.connector(venue)
        for sub in list(self._refcount):
            if sub.venue == venue:
                on_event(connector.status_of(sub))
        watchers = self._status_watchers[venue]

        def unwatch() -> None:
            del watchers[handle]

        handle = Listening(unwatch)
        watchers[handle] = on_event
        return handle

    def subscription(
        self,
        venue: str,
        channel: str | Channel,
        symbol: str | None = None,
        *,
        depth: int = 10,
        interval: int = 1,
    ) -> Subscription:
        connector = self.connector(venue)
        try:
            chan = Channel(channel)
        except ValueError:
            raise UnknownChannel(
                f"unknown channel {channel!r}",
                venue=venue,
                remedy=f"channels: {', '.join(c.value for c in Channel)}",
            ) from None
        # Depth means something to books only, interval to candles only: left at their defaults
        # elsewhere, so a ticker asked for with depth=25 is the same stream as any other ticker.
        unused = Subscription(venue=venue, channel=chan)
        sub = Subscription(
            venue=venue,
            channel=chan,
            symbol=symbol,
            depth=depth if chan is Channel.BOOK else unused.depth,
            interval=interval if chan is Channel.CANDLES else unused.interval,
        )
        connector.validate(sub)
        return sub

    def _attach(
        self,
        sub: Subscription,
        listener: Callable[[AnyEvent], None] | None = None,
        on_refused: Callable[[VenueError], None] | None = None,
    ) -> _Subscriber:
        lossless = sub.channel.private
        queue: asyncio.Queue[AnyEvent] | None = None
        if listener is None:
            queue = asyncio.Queue(0 if lossless else self._queue_size)
        subscriber = _Subscriber(sub, queue, lossless, listener=listener, on_refused=on_refused)
        self._subscribers[sub.describe()].append(subscriber)
        self._refcount[sub] += 1
        connector = self.connectors[sub.venue]
        closing = self._closing.pop(sub, None)
        if closing is not None:  # re-subscribed within the grace period: reuse the open upstream
            closing.cancel()
            self._replay_current(subscriber)
        elif self._refcount[sub] == 1:
            connector.add(sub)
        else:
            self._replay_current(subscriber)
        return subscriber

    def _replay_current(self, subscriber: _Subscriber) -> None:
        """A late joiner of a shared stream gets the current state, not a wait for the next change."""
        sub = subscriber.sub
        for event in self.current_state(sub):
            self._deliver(subscriber, event)
        subscriber.refused = self._refusals.get(sub)
        if subscriber.refused is not None and subscriber.on_refused is not None:
            subscriber.on_refused(subscriber.refused)

    def current_state(self, sub: Subscription) -> list[AnyEvent]:
        """What a consumer joining open stream `sub` is given first: its status, and the current
        book / ticker / session stats / balances where the stream has them."""
        connector = self.connectors[sub.venue]
        current: list[AnyEvent | None] = [connector.status_of(sub)]
        if sub.channel is Channel.BOOK:
            current.append(connector.book_snapshot(sub))
        if sub.channel is Channel.TICKER and sub.symbol:
            current.append(self.market.ticker(sub.venue, sub.symbol))
        if sub.channel is Channel.STATS and sub.symbol:
            current.append(self.market.stats(sub.venue, sub.symbol))
        if sub.channel is Channel.BALANCES:
            views = self.state[sub.venue].balances.all()
            if views:
                current.append(_snapshot_from_views(sub.venue, views, self.clock.time()))
        return [event for event in current if event is not None]

    def _detach(self, subscriber: _Subscriber) -> None:
        sub = subscriber.sub
        self._subscribers[sub.describe()].remove(subscriber)
        self._refcount[sub] -= 1
        if self._refcount[sub] == 0:
            del self._refcount[sub]
            timers = self._timers
            if (
                self.grace_s > 0
                and timers is not None
                and self._runner is not None
                and not self._runner.done()
            ):
                self._closing[sub] = timers.create_task(self._close_after_grace(sub), name=f"grace-{sub}")
            else:
                self._close_upstream(sub)

    async def _close_after_grace(self, sub: Subscription) -> None:
        await self.clock.sleep(self.grace_s)
        if self._closing.get(sub) is asyncio.current_task():
            del self._closing[sub]
            self._close_upstream(sub)

    def _close_upstream(self, sub: Subscription) -> None:
        self.connectors[sub.venue].remove(sub)
        self.market.forget(sub)
        self._refusals.pop(sub, None)

    def upstream_closing(self) -> list[Subscription]:
        """Upstream streams with no subscriber left, open until their grace period ends."""
        return list(self._closing)

    # -- snapshots (REST) --------------------------------------------------------------------
    def book(self, sub: Subscription) -> BookSnapshot | None:
        """The stream's current verified book (None while it has none: opening, resyncing)."""
        return self.connectors[sub.venue].book_snapshot(sub)

    async def market_snapshot(self, sub: Subscription, *, wait_s: float) -> MarketSnapshot:
        """The current values of market stream `sub` (ticker, book, trades or candles).

        An open stream that delivered them answers at once, from memory. Otherwise this joins the
        stream (opening it upstream if need be; it then closes after the grace period) and waits
        up to `wait_s` seconds (bridge clock) for its first data: `ServiceUnavailable` if none
        comes, the venue's error (e.g. `UnknownSymbol`) if it refuses the stream."""
        if (refused := self._refusals.get(sub)) is not None:
            raise refused
        if sub in self._refcount or sub in self._closing:
            status = self.connectors[sub.venue].status_of(sub)
            if self._holds_market_data(sub) or _serving_trades(sub, status):
                return self._market_snapshot(sub)
        waiter = asyncio.ensure_future(self._first_market_data(sub))
        timer = asyncio.ensure_future(self.clock.sleep(wait_s))
        try:
            await asyncio.wait((waiter, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, timer):
                task.cancel()
            await asyncio.gather(waiter, timer, return_exceptions=True)
        if waiter.done() and not waiter.cancelled():
            return waiter.result()  # or raises the venue's refusal
        state = self.connectors[sub.venue].status_of(sub).state
        raise ServiceUnavailable(
            f"no data from {sub.describe()} within {wait_s:g} s (stream {state.value})",
            venue=sub.venue,
            remedy="the venue is slow or unreachable: see /api/health, and try again shortly",
        )

    async def _first_market_data(self, sub: Subscription) -> MarketSnapshot:
        stream = self.subscribe(sub.venue, sub.channel, sub.symbol, depth=sub.depth, interval=sub.interval)
        async with contextlib.aclosing(stream):  # type: ignore[type-var]
            async for event in stream:
                if self._holds_market_data(sub) or (
                    isinstance(event, StreamStatus) and _serving_trades(sub, event)
                ):
                    # Read while still subscribed: with no grace period, leaving closes the stream.
                    return self._market_snapshot(sub)
        raise AssertionError("unreachable: a Bridge stream ends only by raising")  # pragma: no cover

    def _holds_market_data(self, sub: Subscription) -> bool:
        if sub.channel is Channel.BOOK:
            return self.book(sub) is not None
        return self.market.holds(sub)

    def _market_snapshot(self, sub: Subscription) -> MarketSnapshot:
        venue, symbol = sub.venue, sub.symbol or ""
        return MarketSnapshot(
            status=self.connectors[venue].status_of(sub),
            ticker=self.market.ticker(venue, symbol),
            stats=self.market.stats(venue, symbol),
            book=self.book(sub) if sub.channel is Channel.BOOK else None,
            trades=self.market.trades(venue, symbol, TRADES_KEPT),
            candles=self.market.candles(venue, symbol, sub.interval, CANDLES_KEPT),
        )

    # -- trading ---------------------------------------------------------------------------
    async def place_order(
        self,
        venue: str,
        symbol: str,
        side: str,
        order_type: str,
        qty: Decimal | str,
        price: Decimal | str | None = None,
        *,
        client_order_id: str | None = None,
    ) -> str:
        """Place an order; returns the venue's order id. Its lifecycle arrives on `executions`.

        `qty` and `price` are Decimals or decimal strings — never floats, whose binary expansion
        is not the number you meant.

        No answer (a TransportError): the order is UNKNOWN — it may be live. An `OrderUpdate` with
        status `unknown` is published at once and stays in `open_orders()` until the venue's
        orders are read: then `resolved` (naming the venue's order id) or `rejected` (never
        arrived; safe to resend). The error is raised as well."""
        connector = self.connector(venue)
        amount = _decimal("qty", qty)
        limit = None if price is None else _decimal("price", price)
        try:
            return await connector.place_order(
                symbol=symbol,
                side=side,
                order_type=order_type,
                qty=amount,
                price=limit,
                client_order_id=client_order_id,
            )
        except TransportError as exc:
            self._on_event(
                self.state[venue].journal.record_unknown(
                    venue=venue,
                    ts=self.clock.time(),
                    symbol=symbol,
                    side=Side(side.lower()),
                    order_type=order_type,
                    qty=amount,
                    limit_price=limit,
                    client_order_id=client_order_id,
                    reason=f"submit unanswered: {exc.message}",
                )
            )
            self._settle_later(venue)
            raise

    def _settle_later(self, venue: str) -> None:
        timers = self._timers
        if venue in self._settling or timers is None or self._runner is None or self._runner.done():
            return
        self._settling.add(venue)
        timers.create_task(self._settle_unknown(venue), name=f"{venue}-settle-unknown")

    async def _settle_unknown(self, venue: str, first_delay: float = 1.0, max_delay: float = 5.0) -> None:
        """Read the venue's orders until every UNKNOWN submit is decided (retrying with backoff:
        the read fails for the same reason the submit did, often)."""
        journal = self.state[venue].journal
        read = getattr(self.connectors[venue], "order_snapshot", None)
        delay = first_delay
        try:
            while read is not None and journal.unknown_orders():
                await self.clock.sleep(delay)
                delay = min(delay * 2, max_delay)
                try:
                    events: list[AnyEvent] = await read()
                except BrokerBridgeError as exc:
                    logger.warning("%s: reading orders to settle unknown submits failed: %s", venue, exc)
                    continue
                except Exception:  # a bug here must not take the bridge down with it
                    logger.exception("%s: reading orders to settle unknown submits failed (a bug)", venue)
                    continue
                for event in events:
                    self._on_event(event)
                orders = [e for e in events if isinstance(e, OrderUpdate)]
                now = self.clock.time()
                give_up = now - self.unknown_give_up_s
                for update in journal.settle_unknown(orders, ts=now, give_up_before=give_up):
                    logger.info("%s: order %s was unknown: %s", venue, update.order_id, update.reason)
                    self._on_event(update)
        finally:
            self._settling.discard(venue)

    async def cancel_order(self, venue: str, order_id: str) -> int:
        """Cancel an order by venue id; returns how many orders were canceled."""
        return await self.connector(venue).cancel_order(order_id)

    # -- state -------------------------------------------------------------------------------
    def balances(self, venue: str) -> dict[str, BalanceView]:
        self.connector(venue)
        return self.state[venue].balances.all()

    def fills(self, venue: str) -> list[Fill]:
        self.connector(venue)
        return self.state[venue].journal.fills()

    def open_orders(self, venue: str) -> list[OrderUpdate]:
        """Orders believed open (from executions and REST reconciliation)."""
        self.connector(venue)
        return self.state[venue].journal.open_orders()

    async def catalog(self, venue: str) -> Any:
        """The venue's instrument catalogue (Primary: details fetched once a day, cached on disk)."""
        connector = self.connector(venue)
        load = getattr(connector, "catalog", None)
        if load is None:
            raise InvalidRequest(
                f"{venue} has no instrument catalogue here", venue=venue, remedy="use the instruments channel"
            )
        return await load()

    def health(self) -> dict[str, VenueHealth]:
        """Each venue's streams, token and credentials: the Structs `/api/health` encodes."""
        return {venue: conn.health() for venue, conn in self.connectors.items()}

    def _on_refused(self, sub: Subscription, error: VenueError) -> None:
        """The venue will never serve `sub` (unknown pair, no permission…): its consumers' iterators
        end with that error once they have read what came before it."""
        if sub in self._refcount or sub in self._closing:
            self._refusals[sub] = error
        for subscriber in tuple(self._subscribers.get(sub.describe(), ())):
            subscriber.refused = error
            # Wake a consumer blocked on an empty queue: the STALE status saying why goes first.
            if subscriber.queue is None or subscriber.queue.empty():
                self._deliver(subscriber, self.connectors[sub.venue].status_of(sub))
            if subscriber.on_refused is not None:
                subscriber.on_refused(error)

    # -- the event path ----------------------------------------------------------------------
    def _on_event(self, event: AnyEvent) -> None:
        self.events_in += 1
        if isinstance(event, Gap):
            self.gaps[(event.venue, event.stream)] += 1
        elif isinstance(event, StreamStatus) and event.state is StreamState.RESYNCING:
            self.resyncs[(event.venue, event.stream)] += 1
        state = self.state.get(event.venue)
        out: AnyEvent | None = event if state is None else self._through_services(state, event)
        if out is None:
            return
        self.market.record(out)
        subscribers = self._subscribers.get(topic_of(out))
        if subscribers:
            # A copy: a listener may close (detach) while the event goes round.
            for subscriber in tuple(subscribers) if len(subscribers) > 1 else subscribers:
                self._deliver(subscriber, out)
        if isinstance(out, StreamStatus | Gap):
            watchers = self._status_watchers.get(out.venue)
            if watchers:
                for watch in tuple(watchers.values()):
                    watch(out)

    def _through_services(self, state: VenueState, event: AnyEvent) -> AnyEvent | None:
        """Update state; return what consumers should see (None: a replay they saw already)."""
        match event:
            case Fill():
                return event if self._journal_fill(state, event) else None
            case OrderUpdate():
                return event if state.journal.record_order(event) else None
            case BalanceSnapshot(source=Source.REST):
                # A REST answer reconciles; `ts` is when it was asked for. Assets a newer stream
                # delta already moved keep the delta's value, so consumers get the merged view.
                changed = state.balances.apply_snapshot(event, as_of=event.ts)
                if changed:
                    logger.info("%s: balances reconciled from REST: %s", event.venue, ", ".join(changed))
                return _snapshot_from_views(event.venue, state.balances.all(), event.ts, Source.REST)
            case BalanceSnapshot():
                state.balances.apply_snapshot(event)
            case BalanceUpdate():
                state.balances.apply_update(event, received=self.clock.time())
            case StreamStatus(stream=stream) if stream == f"{event.venue}:balances":
                state.balances.set_live(event.state is StreamState.LIVE)
        return event

    def _journal_fill(self, state: VenueState, fill: Fill) -> bool:
        """True if `fill` is new: then it is on disk before this returns."""
        if not state.journal.record_fill(fill):
            return False
        if self.journal_store is None:
            return True
        try:
            return self.journal_store.add_fill(state.scope, fill)
        except JournalError as exc:
            # Durability lost, not the fill: consumers still get it once (the in-memory journal).
            logger.error("%s: %s", fill.venue, exc)
            return True

    def _deliver(self, subscriber: _Subscriber, event: AnyEvent) -> None:
        queue = subscriber.queue
        if queue is None:
            self.events_out += 1
            try:
                subscriber.listener(event)  # type: ignore[misc]
            except Exception:  # the consumer's bug: the other consumers still get the event
                logger.exception(
                    "a listener of %s failed on %s", subscriber.sub.describe(), type(event).__name__
                )
            return
        if queue.full():
            self._make_room(subscriber, event)
        queue.put_nowait(event)
        self.events_out += 1

    def _make_room(self, subscriber: _Subscriber, event: AnyEvent) -> None:
        """Drop the oldest events so that a `Gap` naming them, the stream's latest status (if one
        was among them) and `event` fit. A Gap dropped again widens the new one: the window a
        consumer reads always reaches back to the first event it lost."""
        queue = subscriber.queue
        assert queue is not None
        start = event.ts
        status: StreamStatus | None = None
        dropped = 0
        book = subscriber.sub.channel is Channel.BOOK
        while queue.qsize() > queue.maxsize - (4 if book else 3):
            lost = queue.get_nowait()
            match lost:
                case Gap(stream=stream) if stream == subscriber.sub.describe():
                    start = min(start, lost.start)
                case StreamStatus():
                    status = lost
                    start = min(start, lost.ts)
                case _:
                    start = min(start, lost.ts)
                    dropped += 1
        subscriber.dropped += dropped
        if subscriber.dropped == dropped:  # first overflow of this consumer
            logger.warning(
                "%s: slow consumer of %s: oldest events dropped (a Gap tells it which window)",
                event.venue,
                subscriber.sub.describe(),
            )
        queue.put_nowait(
            Gap(
                venue=event.venue,
                ts=self.clock.time(),
                stream=subscriber.sub.describe(),
                start=start,
                end=event.ts,
                reason=f"consumer too slow: {subscriber.dropped} events dropped so far",
            )
        )
        if status is not None:
            queue.put_nowait(status)
        if book:
            # Lost updates leave the consumer's book wrong: give it the whole book again.
            snapshot = self.connectors[subscriber.sub.venue].book_snapshot(subscriber.sub)
            if snapshot is not None:
                queue.put_nowait(snapshot)


def _decimal(name: str, value: Decimal | str) -> Decimal:
    if isinstance(value, float) or not isinstance(value, Decimal | str):
        raise InvalidRequest(
            f"{name} must be a Decimal or a decimal string, got {type(value).__name__} {value!r}",
            remedy=f'pass e.g. Decimal("0.01") or "0.01" for {name}',
        )
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise InvalidRequest(f"{name} {value!r} is not a number") from None
    if not number.is_finite() or number <= 0:
        raise InvalidRequest(f"{name} must be a positive number, got {value!r}")
    return number


def _serving_trades(sub: Subscription, status: StreamStatus) -> bool:
    """Trades are events, not state: a trades stream that is serving has answered even if no
    trade happened yet (Kraken's trade channel replays no history)."""
    return sub.channel is Channel.TRADES and status.state in (StreamState.LIVE, StreamState.POLLING)


def _snapshot_from_views(
    venue: str, views: dict[str, BalanceView], now: float, source: Source = Source.WS
) -> BalanceSnapshot:
    return BalanceSnapshot(
        venue=venue,
        ts=now,
        balances=tuple(AssetBalance(asset=v.asset, total=v.total, hold=v.hold) for v in views.values()),
        source=source,
    )
