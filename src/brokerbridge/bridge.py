"""`Bridge`: the in-process Python API for bots.

    async with Bridge(load_config()) as bridge:
        async for event in bridge.subscribe("kraken", "book", "BTC/USD", depth=10):
            ...

A facade over the venue connectors (`io/`) and the services that keep state from their events:
every event a connector emits passes the executions journal first (no duplicates across reconnects
or restarts: each new fill is written to the on-disk journal, `config.journal_path`, before anyone
sees it), the balance book (never 0 because a stream is down: read `balances()` for values marked
stale) and the market cache, then reaches its consumers through the fan-out (`services/fanout.py`:
one upstream stream per distinct subscription, shared, a bounded queue per consumer, overflow told
with a `Gap`). Orders go to the venue through the order service (`services/orders.py`: written ahead
to the journal, idempotent by client order id, cancels carried on until answered); a submit that got
no answer is followed by `services/unknown_orders.py` until the venue's orders decide it.

The venues that run are `config.venues` (`[server] venues`; all by default, Primary only when
configured). `simulate=` lets the embedded simulators stand in, in-process, for venues with nothing
configured — explicit, never implied: a bot must not trade on a fake account because an environment
variable went missing. The simulated venues are `Bridge.simulated`.

The Bridge holds each venue's account streams itself, from start and whether or not anyone
consumes them (`Connector.account_channels`: balances and executions with credentials): it logs in,
loads the balances, reconciles orders and fills, and journals every fill as it happens. Until the
balances snapshot came, `balances()` raises `NotLoaded` (never an empty answer, which would read as
a zero balance); `readiness()` says per venue `starting | ready | degraded`, with why.
Market streams open on demand, plus the `[server] warm` ones, held from start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import msgspec

from brokerbridge.core.clock import Clock, SystemClock, within
from brokerbridge.core.config import Config, WarmStream
from brokerbridge.core.errors import (
    ConfigError,
    Fenced,
    InvalidRequest,
    NotLoaded,
    ServiceUnavailable,
    UnknownChannel,
    UnknownVenue,
    VenueError,
    fenced_cause,
)
from brokerbridge.core.events import (
    AnyEvent,
    AssetBalance,
    BalanceSnapshot,
    BalanceUpdate,
    BookSnapshot,
    Candle,
    Channel,
    Fill,
    Gap,
    OrderUpdate,
    SessionStats,
    Source,
    StreamState,
    StreamStatus,
    Subscription,
    Ticker,
    Trade,
)
from brokerbridge.core.health import VenueHealth, VenueReadiness
from brokerbridge.core.options.calendar import MarketCalendar, byma_calendar
from brokerbridge.core.options.views import OptionChain
from brokerbridge.core.orders import AmendRequest, CancelAck, FillsPage, OrderAck, OrderRequest
from brokerbridge.io.connector import Connector
from brokerbridge.io.journal_store import JournalError, JournalStore, SqliteJournalStore
from brokerbridge.io.kraken.connector import KrakenConnector
from brokerbridge.io.transports import Transports
from brokerbridge.services.balances import BalanceBook, BalanceView
from brokerbridge.services.executions import ExecutionJournal
from brokerbridge.services.fanout import FanOut

# What `listen` returns, so the Bridge's users (the server) import it with the Bridge.
from brokerbridge.services.fanout import Listening as Listening
from brokerbridge.services.market_cache import CANDLES_KEPT, TRADES_KEPT, MarketCache
from brokerbridge.services.options import OptionsService
from brokerbridge.services.orders import OrderService, OrderVenue
from brokerbridge.services.readiness import venue_readiness
from brokerbridge.services.unknown_orders import UnknownOrders
from brokerbridge.sim.embedded import embedded_simulators
from brokerbridge.venues.defaults import book_depth
from brokerbridge.venues.primary.catalog import Catalog

logger = logging.getLogger(__name__)


class ConnectorFactory(Protocol):
    """Makes a Bridge's connectors (instead of the configured venues' own, `venue_connectors`):
    each emits into `emit` and reports a stream refused for good to `on_refused`. A cluster edge's
    are `ClusterConnector`s reading the holder's events from Redis (io/cluster/connector.py)."""

    def __call__(
        self,
        *,
        emit: Callable[[AnyEvent], None],
        on_refused: Callable[[Subscription, VenueError], None],
    ) -> list[Connector]: ...


class OrderRoute(Protocol):
    """Where a Bridge's orders go instead of its own order service: a cluster edge sends them to the
    venue's holder (io/cluster/orders.py `OrderRelay`), which answers through its order service."""

    async def place(self, request: OrderRequest) -> OrderAck: ...

    async def cancel(
        self, venue: str, order_id: str | None = None, *, client_order_id: str | None = None
    ) -> CancelAck: ...

    async def amend(self, request: AmendRequest) -> OrderAck: ...

    def fills_page(self, venue: str, *, after: str | None = None, limit: int = 500) -> FillsPage: ...


@dataclass
class VenueState:
    balances: BalanceBook = field(default_factory=BalanceBook)
    journal: ExecutionJournal = field(default_factory=ExecutionJournal)
    scope: str = ""  # the account on the venue, as the on-disk journal keys it
    # Fills published while the journal could not take them (a cluster's Redis restarting, a disk
    # full): written again, oldest first, until it does (`Bridge._rejournal`).
    unjournaled: list[Fill] = field(default_factory=list)
    rejournaling: bool = False


REJOURNAL_FIRST_S = 0.5  # a fill the journal refused is written again after this, doubling up to
REJOURNAL_MAX_S = 5.0  # this while the journal still refuses
RESTORED_FILLS = 10_000  # fills per venue read back from the journal at start (dedupe window)
# An account stream the venue refused for good (a permission taken from the key) is asked for again
# this often (bridge clock): the account comes back once the key is fixed, without a restart.
ACCOUNT_RETRY_S = 30.0


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
        unknown_give_up_s: float | None = None,
        transports: Transports | None = None,
        simulate: bool | Literal["auto"] = False,
        hold_accounts: bool = True,
        connectors: ConnectorFactory | None = None,
        order_route: OrderRoute | None = None,
        journal: bool = True,
        simulators: Callable[[], frozenset[str]] | None = None,
    ) -> None:
        """`simulate`: False (the default) runs the configured venues only — Kraken without keys
        gives public data; "auto" starts the embedded simulator of each venue with no credentials
        and no URLs of its own, as `brokerbridge serve` does (so `Bridge(load_config(),
        simulate="auto")` runs offline); True simulates every venue that runs. Each simulated
        venue logs a WARNING and is listed in `simulated`.

        `hold_accounts`: hold every venue's account streams open from start (False: on demand,
        like market streams — for a one-shot tool that needs no account, e.g. a catalogue query).

        A cluster (docs/cluster.md) builds its Bridges from seams: `connectors` makes the connectors
        (else the configured venues' own), `order_route` takes place/cancel/amend/fills_page (else
        the local order service), `journal_store` is the holder's journal in Redis, and `journal=False`
        runs with no executions journal on disk at all (an edge: the holder journals every fill), and
        `simulators()` names the venues a simulator stands in for beyond the embedded ones (an edge:
        those whose holder reaches one)."""
        if queue_size < 4:
            # Room for a Gap, the stream's status, a fresh book and the newest event.
            raise ConfigError(f"queue_size must be at least 4, got {queue_size}")
        if simulate not in (False, True, "auto"):
            raise ConfigError(f"simulate must be False, True or 'auto', got {simulate!r}")
        # What the Bridge runs with: once started, the simulators' endpoints where they stand in.
        self.config = config
        self._simulate: bool | None = None if simulate == "auto" else bool(simulate)
        self._simulators: contextlib.AsyncExitStack | None = None
        self.clock = clock or SystemClock()
        # How the connectors reach the venues: the network, unless a test joins them in memory.
        self.transports = transports or Transports()
        if grace_s < 0:
            raise ConfigError(f"grace_s must not be negative, got {grace_s}")
        self.connectors: dict[str, Connector] = {}
        self.state: dict[str, VenueState] = {}
        self._runner: asyncio.Task[None] | None = None
        # The on-disk fills journal: injected, or opened from config.journal_path at start.
        self.journal_store = journal_store
        self._owns_store = journal_store is None
        self._journaled = journal or journal_store is not None
        self._connector_factory = connectors
        self._order_route = order_route
        self._simulated_by = simulators
        self.events_in = 0
        # Last ticker/stats, recent trades and candles of the open market streams (REST snapshots,
        # late joiners).
        self.market = MarketCache()
        self.fanout = FanOut(_Upstream(self), clock=self.clock, queue_size=queue_size, grace_s=grace_s)
        # BYMA's calendar, read once (a bad `[options] holidays_file` stops the start here), and the
        # greeks streams computed from the venue streams the fan-out carries.
        self.calendar: MarketCalendar = byma_calendar(config.options.holidays_file)
        self.options = OptionsService(
            fanout=self.fanout,
            clock=self.clock,
            config=config.options,
            calendar=self.calendar,
            catalog=lambda venue: self.connector(venue).catalog(),
            ticker_subscription=lambda venue, symbol: self.subscription(venue, Channel.TICKER, symbol),
        )
        # `unknown_give_up_s`: None takes `[orders] unknown_give_up`.
        give_up = config.orders.unknown_give_up if unknown_give_up_s is None else unknown_give_up_s
        self.unknown_orders = UnknownOrders(clock=self.clock, publish=self._on_event, give_up_s=give_up)
        self.orders = OrderService(
            clock=self.clock,
            publish=self._on_event,
            unknown=self.unknown_orders,
            barred=self.transports.barred,  # a cluster holder's lease, asked before each order goes out
        )
        # (venue, stream) → how often it went RESYNCING / reported a Gap (for /metrics).
        self.resyncs: Counter[tuple[str, str]] = Counter()
        self.gaps: Counter[tuple[str, str]] = Counter()
        # Streams the Bridge holds open itself (account streams, warm market streams) → the hold.
        self.held: dict[Subscription, Listening] = {}
        self.hold_accounts = hold_accounts
        self._warm: dict[Subscription, WarmStream] = {}
        self._retrying: set[Subscription] = set()  # refused account streams waiting to be asked again
        self._tasks: asyncio.TaskGroup | None = None  # the runner's, while it runs
        # Set on every status and balances event of a venue: `wait_ready` looks again then.
        self._account_changed = asyncio.Event()

    @property
    def grace_s(self) -> float:
        """An upstream stream with no subscriber left closes after this long (bridge clock)."""
        return self.fanout.grace_s

    @property
    def events_out(self) -> int:
        """Events delivered to consumers (one per consumer)."""
        return self.fanout.events_out

    @property
    def simulated(self) -> frozenset[str]:
        """The venues that run on a simulator (its demo account: not a real market): an embedded
        one, or a cluster edge's venue whose holder reaches one (`simulators`)."""
        if self._simulated_by is None:
            return self.config.simulated
        return self.config.simulated | self._simulated_by()

    # -- lifetime ----------------------------------------------------------------------------
    async def __aenter__(self) -> Bridge:
        if self._simulate is not False:
            self._simulators = contextlib.AsyncExitStack()
            self.config = await self._simulators.enter_async_context(
                embedded_simulators(self.config, use_sim=self._simulate, venues=self.config.venues)
            )
        try:
            if self.journal_store is None and self._journaled:
                self.journal_store = SqliteJournalStore(self.config.journal_path)
            made = (
                self._make_connectors()
                if self._connector_factory is None
                else self._connector_factory(emit=self._on_event, on_refused=self._on_refused)
            )
            for connector in made:
                self.connectors[connector.venue] = connector
                if self.journal_store is None:  # no journal here (a cluster edge): nothing to restore
                    self.state[connector.venue] = VenueState(scope=connector.journal_scope)
                    continue
                state = self.state[connector.venue] = self._restore(connector)
                # Orders a killed process left undecided are published `unknown` from here on.
                self.orders.add_venue(OrderVenue(connector, state.journal, state.scope), self.journal_store)
            warm = self._warm_subscriptions()  # a mistake in [server] warm stops the start here
        except BaseException:  # e.g. a venue chosen but not configured: leave nothing running
            await self.__aexit__(None, None, None)
            raise
        self._runner = asyncio.get_running_loop().create_task(self._run(), name="bridge")
        for connector in self.connectors.values():
            for channel in connector.account_channels() if self.hold_accounts else ():
                self._hold(Subscription(venue=connector.venue, channel=channel))
        for sub, stream in warm.items():
            self._warm[sub] = stream
            self._hold(sub)
        return self

    def _hold(self, sub: Subscription) -> None:
        if sub not in self.held:
            self.held[sub] = self.fanout.hold(sub)

    def _warm_subscriptions(self) -> dict[Subscription, WarmStream]:
        """`[server] warm` as the subscriptions to hold: a venue not served here, or a stream the
        venue cannot have, is a ConfigError naming the entry."""
        warm: dict[Subscription, WarmStream] = {}
        for stream in self.config.server.warm:
            try:
                sub = self.subscription(
                    stream.venue,
                    stream.channel,
                    stream.symbol,
                    depth=book_depth(stream.venue, stream.depth),
                    interval=stream.interval,
                )
            except (ConfigError, VenueError) as exc:
                raise ConfigError(
                    f"server.warm entry {stream.describe()!r}: {exc.message}",
                    remedy=exc.remedy or "remove the entry or fix it (see server.warm in the docs)",
                ) from None
            warm[sub] = stream
        return warm

    def _restore(self, connector: Connector) -> VenueState:
        """Seed the dedupe window from the on-disk journal: fills published before a restart stay
        published once, and the connector learns what it already reported (e.g. per-order totals)."""
        assert self.journal_store is not None
        scope = connector.journal_scope
        state = VenueState(scope=scope)
        stored = self.journal_store.fills(connector.venue, scope, limit=RESTORED_FILLS)
        for fill in stored:
            state.journal.record_fill(fill)
        if stored:
            connector.restore_fills(stored)
            logger.info("%s: %d fills restored from the journal", connector.venue, len(stored))
        return state

    def _make_connectors(self) -> list[Connector]:
        return venue_connectors(
            self.config,
            emit=self._on_event,
            on_refused=self._on_refused,
            clock=self.clock,
            transports=self.transports,
        )

    async def _run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tasks:
                # Grace timers and unknown-order reads live as long as the connectors do.
                self.fanout.timers = self.unknown_orders.timers = self._tasks = tasks
                self.orders.start(tasks)  # follows unknown orders, carries on pending cancels
                self.options.start(tasks)  # catalogue loads and stale-spot timers of greeks streams
                for conn in self.connectors.values():
                    tasks.create_task(conn.run(), name=f"{conn.venue}-connector")
        except Exception as exc:
            fenced = fenced_cause(exc)
            if fenced is not None:
                # A cluster holder's lease went to another node (docs/cluster.md): an expected end,
                # told once; the node's holder role ends the term and the edges follow the new holder.
                logger.warning("bridge stopped: %s", fenced.message)
                self.fanout.stopped(f"this node no longer holds the venue: {fenced.message}")
                raise
            # Our bug: say so loudly and tell every consumer its data is stale, rather than go quiet.
            logger.exception("bridge stopped after an internal error")
            self.fanout.stopped(f"bridge stopped after an internal error: {exc!r}")
            raise
        finally:
            self.fanout.timers = self.unknown_orders.timers = self._tasks = None
            self.orders.stop()
            self.options.stop()

    async def __aexit__(self, *exc_info: Any) -> None:
        for hold in self.held.values():
            hold.close()
        self.held.clear()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        for conn in self.connectors.values():
            await conn.aclose()
        if self._owns_store and self.journal_store is not None:
            self.journal_store.close()
            self.journal_store = None
        if self._simulators is not None:
            await self._simulators.aclose()
            self._simulators = None

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
        expiry: str | None = None,
        model: str | None = None,
    ) -> AsyncIterator[AnyEvent]:
        """Yield the stream's events (data, `StreamStatus`, `Gap`) until the caller stops iterating.
        Greeks: `symbol` is the underlying's ticker; `expiry` and `model` as in `subscription`."""
        sub = self.subscription(
            venue, channel, symbol, depth=depth, interval=interval, expiry=expiry, model=model
        )
        consumer = self.fanout.subscribe(sub)
        queue = consumer.queue
        assert queue is not None
        try:
            while True:
                if consumer.refused is not None and queue.empty():
                    raise consumer.refused
                yield await queue.get()
        finally:
            self.fanout.unsubscribe(consumer)

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
        return self.fanout.listen(sub, on_event, on_refused)

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
        self.connector(venue)
        return self.fanout.watch_statuses(venue, on_event)

    def subscription(
        self,
        venue: str,
        channel: str | Channel,
        symbol: str | None = None,
        *,
        depth: int = 10,
        interval: int = 1,
        expiry: str | None = None,
        model: str | None = None,
    ) -> Subscription:
        """The `Subscription` for a stream, checked. Greeks (issue 20): `symbol` is the underlying's
        ticker, `expiry` an ISO date (None: every expiry), `model` american/european (None: the
        configured `[options] model`). A greeks stream is checked against the venue's catalogue
        once it is loaded (the first greeks stream or `option_chain` of the venue loads it): until
        then an unknown underlying or expiry is accepted here and refused when the stream opens —
        its iterator ends with the error, as for a symbol the venue refuses."""
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
            expiry=expiry if chan is Channel.GREEKS else None,
            model=(model or self.config.options.model) if chan is Channel.GREEKS else None,
        )
        if chan is Channel.GREEKS:
            self.options.check(sub)
            return sub
        connector.validate(sub)
        return sub

    def current_state(self, sub: Subscription) -> list[AnyEvent]:
        """What a consumer joining open stream `sub` is given first: its status, and the current
        book / ticker / session stats / instruments / balances / open orders where it has them."""
        if sub.channel is Channel.GREEKS:
            return self.options.current_state(sub)
        connector = self.connectors[sub.venue]
        current: list[AnyEvent | None] = [connector.status_of(sub)]
        if sub.channel is Channel.BOOK:
            current.append(connector.book_snapshot(sub))
        if sub.channel is Channel.TICKER and sub.symbol:
            current.append(self.market.ticker(sub.venue, sub.symbol))
        if sub.channel is Channel.STATS and sub.symbol:
            current.append(self.market.stats(sub.venue, sub.symbol))
        if sub.channel is Channel.INSTRUMENTS:  # listed once, at subscribe: give the late joiner them
            current.extend(self.market.instruments(sub.venue))
        if sub.channel is Channel.BALANCES:
            views = self.state[sub.venue].balances.all()
            if views:
                current.append(_snapshot_from_views(sub.venue, views, self.clock.time()))
        if sub.channel is Channel.EXECUTIONS:
            # The stream is held from start: its snapshot of open orders came before this consumer
            # did, so it is given the orders believed open (what the venue's snapshot would say).
            current.extend(self.state[sub.venue].journal.open_orders())
        return [event for event in current if event is not None]

    def upstream_closing(self) -> list[Subscription]:
        """Upstream streams with no subscriber left, open until their grace period ends."""
        return self.fanout.upstream_closing()

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
        if (refused := self.fanout.refusal(sub)) is not None:
            raise refused
        if self.fanout.is_open(sub):
            status = self.connectors[sub.venue].status_of(sub)
            if self._holds_market_data(sub) or _serving_trades(sub, status):
                return self._market_snapshot(sub)
        try:
            return await within(self.clock, wait_s, self._first_market_data(sub))  # or the refusal
        except TimeoutError:
            state = self.connectors[sub.venue].status_of(sub).state
            raise ServiceUnavailable(
                f"no data from {sub.describe()} within {wait_s:g} s (stream {state.value})",
                venue=sub.venue,
                remedy="the venue is slow or unreachable: see /api/health, and try again shortly",
            ) from None

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
    # The order API (core/orders.py), the one way to trade: what /api/orders, the /ws ops,
    # BridgeClient and the CLI serve too.
    # The order service (services/orders.py) does the work: write-ahead, idempotency, no lost cancel.
    async def place(self, request: OrderRequest) -> OrderAck:
        """Place `request`. An order the venue did not answer is not an error here: the ack says
        `unknown` (and why), and its outcome follows on `executions`. The same client order id
        again sends nothing: the first attempt's outcome comes back with `duplicate=True` (the
        same refusal if the venue refused it; `OrderConflict` for other arguments) — also after
        a restart."""
        self.connector(request.venue)
        if self._order_route is not None:
            return await self._order_route.place(request)
        return await self.orders.place(request)

    async def cancel(
        self, venue: str, order_id: str | None = None, *, client_order_id: str | None = None
    ) -> CancelAck:
        """Cancel an order named by the venue's `order_id` or by its `client_order_id` (one of the
        two). A cancel the venue did not answer, or of an order whose own submit is still unknown,
        answers `status="pending"` and is carried on until the venue answers or the order closes."""
        self.connector(venue)
        if self._order_route is not None:
            return await self._order_route.cancel(venue, order_id, client_order_id=client_order_id)
        return await self.orders.cancel(venue, order_id, client_order_id=client_order_id)

    async def amend(self, request: AmendRequest) -> OrderAck:
        """Change an open order's quantity and/or price (named by either id)."""
        self.connector(request.venue)
        if self._order_route is not None:
            return await self._order_route.amend(request)
        return await self.orders.amend(request)

    def fills_page(self, venue: str, *, after: str | None = None, limit: int = 500) -> FillsPage:
        """The journal's fills of `venue` in the order they were journaled, `limit` at a time from the
        cursor `after` (a page's `next`, or its `resume` to poll for fills journaled later)."""
        self.connector(venue)
        if self._order_route is not None:
            return self._order_route.fills_page(venue, after=after, limit=limit)
        return self.orders.fills_page(venue, after=after, limit=limit)

    # -- state -------------------------------------------------------------------------------
    def balances(self, venue: str) -> dict[str, BalanceView]:
        """The venue's balances (marked stale while its stream is down). `NotLoaded` until the
        first snapshot came — an empty answer would read as a zero balance."""
        connector = self.connector(venue)
        book = self.state[venue].balances
        if book.snapshots == 0:
            if Channel.BALANCES not in connector.account_channels():
                try:  # what is missing, in the connector's words
                    connector.validate(Subscription(venue=venue, channel=Channel.BALANCES))
                except (ConfigError, VenueError) as exc:
                    raise NotLoaded(
                        f"{venue} balances are never loaded here: {exc.message}",
                        venue=venue,
                        remedy=exc.remedy,
                    ) from None
            readiness = self._readiness(connector)
            raise NotLoaded(
                f"{venue} balances are not loaded yet ({readiness.state}: {readiness.reason})",
                venue=venue,
                remedy=readiness.remedy or None,
            )
        return book.all()

    def fills(self, venue: str) -> list[Fill]:
        self.connector(venue)
        return self.state[venue].journal.fills()

    def open_orders(self, venue: str) -> list[OrderUpdate]:
        """Orders believed open (from executions and REST reconciliation)."""
        self.connector(venue)
        return self.state[venue].journal.open_orders()

    async def option_chain(
        self,
        venue: str,
        underlying: str,
        *,
        expiry: str | None = None,
        model: str | None = None,
        wait_s: float = 5.0,
    ) -> OptionChain:
        """The option chain of `underlying` (a ticker: GGAL) with every option's analytics, as
        `GET /api/options/{venue}/{underlying}` gives it: computed from the current quotes (the
        streams it needs are opened and held for the grace period, waiting up to `wait_s` for
        their first data). UnknownSymbol for an underlying without listed options; InvalidRequest
        for an expiry not listed (the remedy lists those that are); UnknownChannel for a venue
        without an options catalogue; ServiceUnavailable when no computation came within `wait_s`."""
        self.connector(venue)
        sub = self.subscription(venue, Channel.GREEKS, underlying, expiry=expiry, model=model)
        refused: list[VenueError] = []
        computed = asyncio.Event()

        def on_event(event: AnyEvent) -> None:
            if self.options.computed(sub):
                computed.set()

        def on_refused(error: VenueError) -> None:
            refused.append(error)
            computed.set()

        listening = self.fanout.listen(sub, on_event, on_refused)
        try:
            if not refused and not self.options.computed(sub):
                try:
                    await within(self.clock, wait_s, computed.wait())
                except TimeoutError:
                    status = self.options.status_of(sub)
                    raise ServiceUnavailable(
                        f"no options analytics of {sub.describe()} within {wait_s:g} s "
                        f"(stream {status.state.value}: {status.reason})",
                        venue=venue,
                        remedy="the venue is slow or unreachable: see /api/health, and try again shortly",
                    ) from None
            if refused:
                raise refused[0]
            # Read while still listening: with no grace period, leaving closes the streams.
            return self.options.chain(sub, simulated=venue in self.simulated)
        finally:
            listening.close()

    async def catalog(self, venue: str) -> Catalog:
        """The venue's instrument catalogue (Primary: details fetched once a day, cached on disk)."""
        catalog = await self.connector(venue).catalog()
        self.options.learn_catalog(venue, catalog)  # greeks streams are checked against it now
        if catalog is None:
            raise InvalidRequest(
                f"{venue} has no instrument catalogue here", venue=venue, remedy="use the instruments channel"
            )
        return catalog

    def health(self) -> dict[str, VenueHealth]:
        """Each venue's streams, token, credentials and readiness: the Structs `/api/health`
        encodes. A simulated venue says so, and that the credentials it logs in with are not the
        user's."""
        health = {
            venue: msgspec.structs.replace(conn.health(), readiness=self._readiness(conn))
            for venue, conn in self.connectors.items()
        }
        for venue in self.simulated & health.keys():
            health[venue] = msgspec.structs.replace(health[venue], credentials=False, simulated=True)
        return health

    def readiness(self) -> dict[str, VenueReadiness]:
        """Per venue: `starting` until its account streams delivered their first snapshot, then
        `ready` while they are live, `degraded` (with the reason and a remedy) while one is not.
        A venue with no account is `ready` (market data only). What `/api/ready` answers."""
        return {venue: self._readiness(conn) for venue, conn in self.connectors.items()}

    def _readiness(self, connector: Connector) -> VenueReadiness:
        venue = connector.venue
        book = self.state[venue].balances
        if not self.hold_accounts:
            # Nothing is loaded at start here: the account is what its consumers opened.
            return VenueReadiness(
                state="ready", reason="account streams open on demand (hold_accounts=False)"
            )
        statuses = [
            connector.status_of(Subscription(venue=venue, channel=channel))
            for channel in connector.account_channels()
        ]
        return venue_readiness(venue, statuses, loaded=book.snapshots > 0, balances=len(book.all()))

    async def wait_ready(self, wait_s: float = 10.0) -> dict[str, VenueReadiness]:
        """Wait until every venue is ready (up to `wait_s` seconds on the Bridge's clock) and
        return their readiness; `ServiceUnavailable` naming the venues that are not, and why."""

        async def until_ready() -> dict[str, VenueReadiness]:
            while True:
                self._account_changed.clear()
                readiness = self.readiness()
                if all(r.ready for r in readiness.values()):
                    return readiness
                await self._account_changed.wait()

        try:
            return await within(self.clock, wait_s, until_ready())
        except TimeoutError:
            waiting = {venue: r for venue, r in self.readiness().items() if not r.ready}
            raise ServiceUnavailable(
                f"not ready within {wait_s:g} s: "
                + "; ".join(f"{venue} {r.state}: {r.reason}" for venue, r in waiting.items()),
                venue=",".join(waiting),
                remedy=next((r.remedy for r in waiting.values() if r.remedy), ""),
            ) from None

    def _on_refused(self, sub: Subscription, error: VenueError) -> None:
        """The venue will never serve `sub` (unknown pair, no permission…): its consumers' iterators
        end with that error once they have read what came before it. A warm stream is let go (an
        account stream stays held: readiness shows it refused until the key is fixed)."""
        self.fanout.refused(sub, error)
        if sub in self._warm and (hold := self.held.pop(sub, None)) is not None:
            logger.error(
                "server.warm entry %r refused by %s: %s", self._warm[sub].describe(), sub.venue, error
            )
            hold.close()
        elif sub in self.held and sub not in self._retrying and self._tasks is not None:
            self._retrying.add(sub)
            self._tasks.create_task(self._ask_again(sub), name=f"retry-{sub.describe()}")

    async def _ask_again(self, sub: Subscription) -> None:
        """Ask the venue for refused account stream `sub` again after `ACCOUNT_RETRY_S` (while it
        is held): a refusal for good may be undone by the user (a permission given back to the key)."""
        try:
            await self.clock.sleep(ACCOUNT_RETRY_S)
        finally:
            self._retrying.discard(sub)
        if sub in self.held:
            logger.info("%s: asking again for %s, refused before", sub.venue, sub.describe())
            connector = self.connectors[sub.venue]
            connector.remove(sub)
            self.fanout.forget_refusal(sub)
            connector.add(sub)

    # -- the event path ----------------------------------------------------------------------
    def _on_event(self, event: AnyEvent) -> None:
        self.events_in += 1
        if isinstance(event, Gap):
            self.gaps[(event.venue, event.stream)] += 1
        elif isinstance(event, StreamStatus) and event.state is StreamState.RESYNCING:
            self.resyncs[(event.venue, event.stream)] += 1
        if isinstance(event, StreamStatus | BalanceSnapshot):
            self._account_changed.set()  # readiness may have changed
        state = self.state.get(event.venue)
        out: AnyEvent | None = event if state is None else self._through_services(state, event)
        if out is None:
            return
        self.market.record(out)
        self.fanout.publish(out)

    def _through_services(self, state: VenueState, event: AnyEvent) -> AnyEvent | None:
        """Update state; return what consumers should see (None: a replay they saw already)."""
        match event:
            case Fill():
                return event if self._journal_fill(state, event) else None
            case OrderUpdate():
                if not state.journal.record_order(event):
                    return None
                self.orders.observe(event)  # a journaled order that ended: its row says so
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
            # Durability lost for now, not the fill: consumers still get it once (the in-memory
            # journal), and it is written again until the journal takes it.
            logger.error("%s: %s", fill.venue, exc)
            state.unjournaled.append(fill)
            if not state.rejournaling and self._tasks is not None:
                state.rejournaling = True
                self._tasks.create_task(self._rejournal(state), name=f"{fill.venue}-rejournal")
            return True

    async def _rejournal(self, state: VenueState) -> None:
        """Write the fills the journal refused, oldest first, backing off while it still refuses
        (off the event loop: a Redis that does not answer takes its timeout per attempt). A holder
        fenced meanwhile leaves them to the venue's next holder, whose reconciliation reads them
        from the venue."""
        delay = REJOURNAL_FIRST_S
        try:
            while state.unjournaled and self.journal_store is not None:
                await self.clock.sleep(delay)
                fill = state.unjournaled[0]
                try:
                    await asyncio.to_thread(self.journal_store.add_fill, state.scope, fill)
                except JournalError:
                    delay = min(delay * 2, REJOURNAL_MAX_S)
                    continue
                except Fenced as exc:
                    logger.warning(
                        "%s: %d fills not journaled here, left to the venue's next holder: %s",
                        fill.venue,
                        len(state.unjournaled),
                        exc.message,
                    )
                    state.unjournaled.clear()
                    return
                state.unjournaled.pop(0)
                delay = REJOURNAL_FIRST_S
                logger.warning("%s: fill %s journaled late (refused before)", fill.venue, fill.exec_id)
        finally:
            state.rejournaling = False


def venue_connectors(
    config: Config,
    *,
    emit: Callable[[AnyEvent], None],
    on_refused: Callable[[Subscription, VenueError], None],
    clock: Clock,
    transports: Transports,
) -> list[Connector]:
    """The connectors of `config.venues`, reaching the venues through `transports` (a Bridge's own;
    a cluster node builds them too: its holder's, and its edge's shadows that are never run)."""
    net = transports
    venues = config.venues
    connectors: list[Connector] = []
    if "kraken" in venues:
        connectors.append(
            KrakenConnector(
                config.kraken,
                emit=emit,
                clock=clock,
                on_refused=on_refused,
                http=net.http(
                    timeout=config.kraken.request_timeout,
                    deadline=config.kraken.request_deadline,
                    clock=clock,
                ),
                ws_connect=net.ws_connect,
            )
        )
    if "primary" in venues and config.primary is None and config.server.venues:
        raise ConfigError(
            "primary is one of the venues to run ([server] venues / --venue) but is not configured",
            remedy="configure [primary] (environment, user, password), or let its simulator stand in "
            '(`serve` without --no-sim; `Bridge(config, simulate="auto")`), or leave primary out',
        )
    if "primary" in venues and config.primary is not None:
        from brokerbridge.io.primary.connector import PrimaryConnector

        connectors.append(
            PrimaryConnector(
                config.primary,
                emit=emit,
                clock=clock,
                on_refused=on_refused,
                http=net.http(
                    timeout=config.primary.request_timeout,
                    deadline=config.primary.request_deadline,
                    clock=clock,
                ),
                ws_connect=net.ws_connect,
            )
        )
    return connectors


class _Upstream:
    """The venue streams behind the Bridge's fan-out: its connectors and the state kept from them."""

    def __init__(self, bridge: Bridge) -> None:
        self._bridge = bridge

    def open(self, sub: Subscription) -> None:
        if sub.channel is Channel.GREEKS:  # derived: computed here from venue streams
            self._bridge.options.open(sub)
            return
        self._bridge.connectors[sub.venue].add(sub)

    def close(self, sub: Subscription) -> None:
        if sub.channel is Channel.GREEKS:
            self._bridge.options.close(sub)
            return
        self._bridge.connectors[sub.venue].remove(sub)
        self._bridge.market.forget(sub)

    def current_state(self, sub: Subscription) -> list[AnyEvent]:
        return self._bridge.current_state(sub)

    def status_of(self, sub: Subscription) -> StreamStatus:
        if sub.channel is Channel.GREEKS:
            return self._bridge.options.status_of(sub)
        return self._bridge.connectors[sub.venue].status_of(sub)

    def book_snapshot(self, sub: Subscription) -> BookSnapshot | None:
        if sub.channel is Channel.GREEKS:
            return None
        return self._bridge.connectors[sub.venue].book_snapshot(sub)


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
