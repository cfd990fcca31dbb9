"""`PrimaryConnector`: everything brokerbridge holds open to a Primary API (reMarkets, Matba Rofex,
a broker's xOMS), for one user and account.

* the login token (`auth/getToken`, 24 h): one login, re-login every `relogin_interval` and once on a
  401 (the REST client returns the retried result), and before reconnecting a socket that went
  silent or whose upgrade was refused — Primary silences the sockets of an invalidated token;
* the one WebSocket (market data and order reports), a pure `PrimaryWsSession` under the shared
  `ConnectionSupervisor` with the token as the `X-Auth-Token` upgrade header and ping frames every
  30 s; REST `marketdata/get` polling while it is down, one product per `poll_interval` (Primary asks
  for at most one call a second), with the same events;
* positions and the account report polled (Primary has no balance stream) for `positions` and
  `balances` subscriptions; order state (and with it fills missed while away: `order/all` carries
  each order's cumulative quantity) reconciled from REST after every (re)connect, the first one
  included (a failed read is retried with backoff until one succeeds). Trades and candles have
  no REST history to backfill from here: consumers get the supervisor's `Gap` naming the window;
* the instrument catalogue, fetched once a day and cached on disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any, Literal, TypeVar

import msgspec

from brokerbridge.core.clock import Clock, race
from brokerbridge.core.config import PrimaryConfig
from brokerbridge.core.errors import (
    BrokerBridgeError,
    ConfigError,
    InvalidRequest,
    SessionInvalid,
    UnknownSymbol,
    VenueError,
)
from brokerbridge.core.events import (
    AnyEvent,
    BookSnapshot,
    Channel,
    Fill,
    StreamState,
    StreamStatus,
    Subscription,
)
from brokerbridge.core.health import StreamHealth, VenueHealth
from brokerbridge.core.hours import market_hours
from brokerbridge.core.orders import Canceled, OrderRequest, Submitted
from brokerbridge.core.rest import Request
from brokerbridge.core.signals import OrderAnswered, Signal, Subscribed, TokenRejected
from brokerbridge.io.http import HttpClient
from brokerbridge.io.primary.instruments import InstrumentCache
from brokerbridge.io.primary.orders import PrimaryOrderEntry
from brokerbridge.io.primary.rest import Answered, PrimaryRestClient
from brokerbridge.io.refresh import keep_fresh
from brokerbridge.io.retry import Retrying
from brokerbridge.io.supervisor import ConnectionSupervisor, Emit
from brokerbridge.io.tasks import spawn
from brokerbridge.io.token import TokenManager
from brokerbridge.io.transports import WsConnect
from brokerbridge.io.ws import connect
from brokerbridge.venues.order_checks import check_common
from brokerbridge.venues.primary import VENUE, order_rules
from brokerbridge.venues.primary import normalize as norm
from brokerbridge.venues.primary import rest as codec
from brokerbridge.venues.primary.catalog import Catalog
from brokerbridge.venues.primary.environments import resolve_environment
from brokerbridge.venues.primary.messages import EntryValue
from brokerbridge.venues.primary.rest_messages import InstrumentDetailWire
from brokerbridge.venues.primary.session import CHANNEL_ENTRIES, PrimaryWsSession

logger = logging.getLogger(__name__)

T = TypeVar("T")

RISK_POLL_INTERVAL = 5.0  # positions / account report: Primary's best practice is one call per 5 s
ORDERS_POLL_EVERY = 10  # while the socket is down, order state every 10th poll
CATALOGUE_CHECK = 600.0  # seconds between looks at whether the catalogue is today's
_RISK_CHANNELS = frozenset({Channel.POSITIONS, Channel.BALANCES})
_POLLABLE = frozenset({Channel.TICKER, Channel.BOOK, Channel.TRADES, Channel.STATS, Channel.EXECUTIONS})


class PrimaryConnector:
    venue = VENUE

    def __init__(
        self,
        config: PrimaryConfig,
        *,
        emit: Emit,
        clock: Clock,
        rng: random.Random | None = None,
        http: HttpClient | None = None,
        on_refused: Callable[[Subscription, VenueError], None] | None = None,
        ws_connect: WsConnect = connect,
    ) -> None:
        self.config = config
        self.clock = clock
        self._ws_connect = ws_connect
        self._emit_out = emit
        self.environment = resolve_environment(
            config.rest_url or config.environment, ws_url=config.ws_url, proprietary=config.proprietary
        )
        self.rest = PrimaryRestClient(config, self.environment, http=http, clock=clock)
        self.tokens = TokenManager(
            self.rest.login,
            clock=clock,
            venue=VENUE,
            refresh_interval=config.relogin_interval,
            rng=rng,
            # A refused login is retried while anything is subscribed, so streams come back as
            # soon as the venue lets us in again.
            needed=lambda: bool(self.session.subscriptions or self._risk_subs),
        )
        self.rest.tokens = self.tokens
        self.tokens.on_token = self._on_new_token
        self.session = PrimaryWsSession(
            idle_timeout=config.idle_timeout,
            market_open=market_hours(config.market_hours),
            wall_clock=clock.time,
            account=config.account,
        )
        self.stream = ConnectionSupervisor(
            venue=VENUE,
            name="ws",
            url=self.environment.ws_url,
            session=self.session,
            hooks=_Hooks(self),
            emit=self._emit,
            clock=clock,
            backoff=config.backoff,
            poll_after=config.poll_after,
            poll_interval=config.poll_interval,
            rng=rng,
            connector=self._dial,
            failure_message="Primary WebSocket connection failed",
            on_refused=on_refused,
        )
        self._ws_token: str | None = None
        self._relogin_before_connect = False
        self._cache = InstrumentCache(config.instruments_cache_dir, self.environment.name, clock)
        self._catalog: Catalog | None = None
        self._catalog_day: object = None  # the cache file (one per Buenos Aires day) it came from
        self._details: tuple[InstrumentDetailWire, ...] = ()  # the catalogue's details as Primary sent them
        self._catalog_lock = asyncio.Lock()
        self._listing = False  # the catalogue is being kept loaded (from the first symbol's subscription)
        self._risk_subs: dict[Subscription, None] = {}
        self._risk_wake = asyncio.Event()
        self._risk_states: dict[Subscription, StreamState] = {}
        self._risk_reasons: dict[Subscription, str] = {}  # the reason of each one's last status
        self._poll_cursor = 0
        self._polls = 0
        self._tasks: asyncio.TaskGroup | None = None
        self._rng = rng or random.Random()  # jitter of the reconciliation's retries
        self._reconcile_task: asyncio.Task[None] | None = None
        self._reconcile_due = False
        self.order_entry = PrimaryOrderEntry(
            account=config.account,
            default_proprietary=self.environment.proprietary,
            rest=self.rest,
            session=self.session,
            stream=self.stream,
            clock=clock,
            emit=self._emit,
            spawn=self.spawn,
            read_orders=lambda: self.orders_from_rest(snapshot=True),
        )

    @property
    def journal_scope(self) -> str:
        """The account as the fills journal keys it (endpoint + account, hashed)."""
        ident = f"{self.environment.rest_url}\n{self.config.account or ''}"
        return hashlib.sha256(ident.encode()).hexdigest()[:16]

    def restore_fills(self, fills: list[Fill]) -> None:
        """Fills journaled by an earlier run: Primary's fills are cumulative-quantity deltas, so the
        order tracker must start from what was already reported, or a restart reports it again."""
        totals: dict[str, Decimal] = {}
        for fill in fills:
            totals[fill.order_id] = totals.get(fill.order_id, Decimal(0)) + fill.qty
        for order_id, cum_qty in totals.items():
            self.session.orders.restore(order_id, cum_qty)

    # -- lifetime ----------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                tasks.create_task(self.stream.run(), name="primary-ws")
                tasks.create_task(self.tokens.run_refresher(), name="primary-relogin")
                tasks.create_task(self._poll_risk_forever(), name="primary-risk")
                tasks.create_task(self._probe_token_forever(), name="primary-token-check")
                if any(sub.symbol is not None for sub in self.session.subscriptions):  # added before
                    self._listing = True
                    tasks.create_task(self._list_instruments_forever(), name="primary-catalogue")
        finally:
            self._tasks = None
            self._listing = False

    async def aclose(self) -> None:
        await self.tokens.aclose()  # a login under way ends before the HTTP client it runs on
        await self.rest.aclose()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None] | None:
        """Run background work owned by this connector's task group (None: not running)."""
        return spawn(self._tasks, coro, name)

    async def login_for_socket(self) -> None:
        """Before each (re)connect: the token the socket opens with. An upgrade refused with
        401/403, or a socket that went silent (TokenRejected), means the token was revoked (a login
        elsewhere): log in again first — once, even if REST calls saw the same refusal meanwhile
        (`replacing`)."""
        refused = isinstance(self.stream.last_exception, SessionInvalid)
        fresh = (self._relogin_before_connect or refused) and self._ws_token is not None
        if fresh:  # the socket's token was silenced or its upgrade refused
            self.rest.session_replaced("the WebSocket (upgrade refused or socket silenced)")
        self._relogin_before_connect = False
        try:
            self._ws_token = await self.tokens.get(fresh=fresh, replacing=self._ws_token if fresh else None)
        except BrokerBridgeError as exc:
            level = logging.WARNING if exc.retryable else logging.ERROR
            logger.log(level, "primary: Cannot log in: %s", exc)
            raise

    def relogin_before_reconnect(self) -> None:
        """The venue silenced the socket's token: the next connect logs in again first."""
        self._relogin_before_connect = True

    def _on_new_token(self, token: str) -> None:
        """A new login revokes the previous token on Primary, and with it the open socket's data:
        move the socket to the new token now instead of waiting for the silence watchdog. A
        socket waiting to reconnect for want of a login reconnects now."""
        if self._ws_token is not None and token != self._ws_token and self.stream.connected:
            logger.info("primary: new login; reconnecting the WebSocket with the new token")
            self.stream.request_reconnect("token renewed")
        elif not self.stream.connected:
            self.stream.retry_now()

    async def _probe_token_forever(self) -> None:
        """While the socket is up, a cheap REST call every `idle_timeout`: a revoked token shows
        as a 401 (→ one re-login → the socket moves to the new token), even when the socket
        carries only order reports, which may rightly stay quiet for hours."""
        while True:
            await self.clock.sleep(self.config.idle_timeout)
            if not self.stream.connected:
                continue
            try:
                await self.rest.call(codec.segments_request())
            except BrokerBridgeError as exc:
                logger.warning("primary: token check failed: %s", exc)
                self._check_socket_token(exc)
            except Exception:
                logger.exception("primary: token check failed unexpectedly (a bug)")

    def _check_socket_token(self, error: BrokerBridgeError) -> None:
        """A REST call failed with `error`: if the venue refused the token the socket was opened
        with and no new login could be had, the socket is silenced (Primary stops a revoked
        token's data) — reconnect now, so every stream shows why, instead of `live` with nothing
        flowing until the silence watchdog fires."""
        if not self.stream.connected or not self.tokens.refused(self._ws_token):
            return
        self._relogin_before_connect = True
        self.stream.request_reconnect(
            f"the venue refused the session's token; logging in again failed: {error}"
        )

    def _dial(self, url: str) -> Any:
        headers = {codec.TOKEN_HEADER: self._ws_token} if self._ws_token else {}
        # Ping frames (default every 30 s, pyRofex's heartbeat): Primary closes sockets that send nothing.
        return self._ws_connect(
            url, headers=headers, redact=self.tokens.redact, ping_interval=self.config.ping_interval
        )

    # -- subscriptions -----------------------------------------------------------------------
    def validate(self, sub: Subscription) -> None:
        if not self.config.has_credentials:
            raise ConfigError(
                f"{sub.describe()} needs Primary credentials (Primary requires a login even for market data)",
                remedy="set primary.user, primary.password and primary.account",
            )
        if sub.channel in _RISK_CHANNELS:
            if sub.symbol:
                raise InvalidRequest(f"{sub.describe()} takes no symbol (it is the account's)", venue=VENUE)
            if not self.config.account:
                raise ConfigError(f"{sub.describe()} needs primary.account")
            return
        if sub.channel is Channel.EXECUTIONS and not self.config.account:
            raise ConfigError(f"{sub.describe()} needs primary.account (order reports are per account)")
        try:
            self.session.validate(sub)
        except ValueError as exc:
            raise InvalidRequest(str(exc), venue=VENUE) from None
        if sub.symbol is not None and self.symbol_listed(sub.symbol) is False:
            raise self.unlisted(sub.symbol)

    def unlisted(self, symbol: str) -> UnknownSymbol:
        return UnknownSymbol(
            f"primary does not list {symbol!r} today",
            venue=VENUE,
            remedy="use a symbol of today's instruments (GET /api/instruments?venue=primary, "
            "`brokerbridge instruments`), e.g. 'MERV - XMEV - GGAL - 24hs'",
        )

    async def listed_symbols(self) -> frozenset[str]:
        """Today's catalogue's symbols (fetched again when the Buenos Aires day changes)."""
        return frozenset(detail.symbol for detail in await self.catalog())

    def symbol_listed(self, symbol: str) -> bool | None:
        """Whether today's catalogue lists `symbol` (None while it is not loaded: a catalogue of an
        earlier day may lack today's new series, so it does not refuse anything)."""
        if self._catalog is None or self._catalog_day != self._cache.path_for_today():
            return None
        return symbol in self._catalog

    async def _list_instruments_forever(self) -> None:
        """From the first subscription with a symbol on: load the catalogue, and look again every
        `CATALOGUE_CHECK` (it is fetched again when the Buenos Aires day changes); once loaded,
        `validate` refuses a symbol it does not list, before anything goes upstream. Until it
        loads, Primary's own refusal answers them."""
        await keep_fresh(
            self.catalog,
            clock=self.clock,
            backoff=self.config.backoff,
            every=CATALOGUE_CHECK,
            what="primary's instrument catalogue",
            meanwhile="Primary checks symbols itself until it loads",
        )

    def account_channels(self) -> tuple[Channel, ...]:
        """The account report (balances, REST-polled) and order reports (executions, on the
        socket), with credentials and an account. Positions stay on demand: one more risk call
        every few seconds that nothing needs until someone asks."""
        if not (self.config.has_credentials and self.config.account):
            return ()
        return (Channel.BALANCES, Channel.EXECUTIONS)

    def add(self, sub: Subscription) -> None:
        self.validate(sub)
        if not self._listing and sub.symbol is not None and self._tasks is not None:
            # Market data is used (and the connector runs): learn what is listed.
            self._listing = True
            self.spawn(self._list_instruments_forever(), "primary-catalogue")
        if sub.channel in _RISK_CHANNELS:
            if sub not in self._risk_subs:
                self._risk_subs[sub] = None
                self._risk_wake.set()  # polled at once: its first answer now, not at the next round
            return
        self.session.add(sub, self.clock.monotonic())
        self.stream.notify()

    def remove(self, sub: Subscription) -> None:
        if sub.channel in _RISK_CHANNELS:
            self._risk_subs.pop(sub, None)
            self._risk_states.pop(sub, None)
            self._risk_reasons.pop(sub, None)
            return
        self.session.remove(sub, self.clock.monotonic())
        self.stream.forget(sub)
        self.stream.notify()

    def status_of(self, sub: Subscription) -> StreamStatus:
        if sub.channel in _RISK_CHANNELS:
            state = self._risk_states.get(sub, StreamState.CONNECTING)
            reason = self._risk_reasons.get(sub)
        else:
            state, reason = self.stream.sub_state(sub), self.stream.sub_reason(sub)
        return StreamStatus(
            venue=VENUE,
            ts=self.clock.time(),
            stream=sub.describe(),
            state=state,
            reason=reason or "current state",
            reconnects=self.stream.reconnects,
        )

    def book_snapshot(self, sub: Subscription) -> BookSnapshot | None:
        book = self.session.book(sub)
        if book is None:
            return None
        return BookSnapshot(
            venue=VENUE,
            ts=self.clock.time(),
            symbol=sub.symbol or "",
            depth=sub.depth,
            bids=book.bids_levels(),
            asks=book.asks_levels(),
        )

    def _emit(self, event: AnyEvent) -> None:
        self._emit_out(event)

    # -- instruments -------------------------------------------------------------------------
    async def catalog(self) -> Catalog:
        """Today's instruments (REST `instruments/details`, cached on disk once a day)."""
        async with self._catalog_lock:
            day = self._cache.path_for_today()
            if self._catalog is None or self._catalog_day != day:
                request = codec.instruments_details_request()
                body = await self._cache.load(lambda: self.rest.raw(request))
                response = codec.parse_answer(request, 200, None, body)
                self._catalog = Catalog.from_wire(response.instruments)
                self._details = tuple(response.instruments)
                self._catalog_day = day
                logger.info("primary: %d instruments loaded", len(self._catalog))
            return self._catalog

    # -- polling -----------------------------------------------------------------------------
    async def poll_stream(self, subs: tuple[Subscription, ...]) -> list[AnyEvent]:
        """While the socket is down: one product per call (≤ 1 marketdata/get a second), and order
        state now and then, as the same events the socket would have produced."""
        events: list[AnyEvent] = []
        self._polls += 1
        symbols = sorted({s.symbol for s in subs if s.symbol and s.channel is not Channel.EXECUTIONS})
        if symbols:
            symbol = symbols[self._poll_cursor % len(symbols)]
            self._poll_cursor += 1
            events.extend(await self._poll_product(symbol, [s for s in subs if s.symbol == symbol]))
        if any(s.channel is Channel.EXECUTIONS for s in subs) and self._polls % ORDERS_POLL_EVERY == 1:
            events.extend(await self.orders_from_rest(snapshot=True))
        return events

    async def _poll_product(self, symbol: str, subs: list[Subscription]) -> list[AnyEvent]:
        """One `marketdata/get` for everything `subs` need of `symbol`, as socket-shaped events."""
        entries = sorted({entry for sub in subs for entry in CHANNEL_ENTRIES[sub.channel]})
        depth = max([s.depth for s in subs if s.channel is Channel.BOOK] or [1])
        try:
            response = await self.rest.call(codec.market_data_request(symbol, entries, depth))
        except (UnknownSymbol, InvalidRequest) as exc:
            # One product without data must not mark every polled stream as failing.
            logger.warning("primary: polling %s: %s", symbol, exc)
            return []
        channels = {sub.channel for sub in subs}
        return list(
            norm.events_from_market_data(
                symbol,
                response.marketData,
                ticker=Channel.TICKER in channels,
                book_depths=[s.depth for s in subs if s.channel is Channel.BOOK],
                stats=Channel.STATS in channels,
                trades=self.session.trades if Channel.TRADES in channels else None,
                ts=self.clock.time(),
            )
        )

    async def orders_from_rest(self, *, snapshot: bool) -> list[AnyEvent]:
        """The account's orders from REST, through the session's tracker (no duplicate fills)."""
        if not self.config.account:
            return []
        response = await self.rest.call(codec.orders_request(self.config.account, "all"))
        now = self.clock.time()
        events: list[AnyEvent] = []
        for report in response.orders:
            events.extend(self.session.orders.events(report, ts=now, snapshot=snapshot))
        return events

    def request_reconcile(self) -> None:
        """Read order state from REST soon (after every (re)connect), so nothing that happened while
        away is lost. Requests coalesce: one read runs at a time; a request while it runs (a
        reconnect meanwhile) reads once more after it."""
        self._reconcile_due = True
        if self._reconcile_task is None:
            self._reconcile_task = self.spawn(self._reconcile_until_done(), "primary-reconcile")

    async def _reconcile_until_done(self) -> None:
        """A failed read is retried with the connection's backoff until one succeeds, as Kraken's
        is: given up after one failure, an order filled or canceled while the socket was away (a
        `snapshotOnlyActive` subscription replays only open ones) was never reported."""
        try:
            retrying = Retrying(
                self.config.backoff,
                clock=self.clock,
                rng=self._rng,
                what="primary: order reconciliation with REST",
                log=logger,
            )
            while self._reconcile_due:
                self._reconcile_due = False
                try:
                    events = await self.orders_from_rest(snapshot=True)
                except BrokerBridgeError as exc:
                    self._reconcile_due = True
                    if not await retrying.after_failure(exc):
                        return
                    continue
                except Exception:  # a bug here must not take the streams down with it
                    logger.exception("primary: order reconciliation failed unexpectedly (a bug)")
                    return
                for event in events:
                    self._emit(event)
        finally:
            self._reconcile_task = None
            self._reconcile_due = False

    async def _poll_risk_forever(self) -> None:
        """Positions and the account report, every few seconds while anyone wants them."""
        while True:
            if not self._risk_subs:
                self._risk_wake.clear()
                await self._risk_wake.wait()
            self._risk_wake.clear()  # a stream added from here on asks for another poll
            try:
                await self._poll_risk_once()
            except BrokerBridgeError as exc:
                logger.warning("primary: risk polling failed: %s", exc)
                self._set_risk_states(StreamState.STALE, f"risk polling failing: {exc.message}")
                self._check_socket_token(exc)
            except Exception:
                logger.exception("primary: risk polling failed unexpectedly (a bug)")
                self._set_risk_states(StreamState.STALE, "risk polling failing (internal error)")
            await race(self.clock.sleep(RISK_POLL_INTERVAL), self._risk_wake.wait())

    async def _poll_risk_once(self) -> None:
        account = self.config.account
        assert account is not None
        channels = {sub.channel for sub in self._risk_subs}
        now = self.clock.time()
        if Channel.POSITIONS in channels:
            positions = await self.rest.call(codec.positions_request(account))
            for event in norm.positions_from_rest(positions.positions, account=account, ts=now):
                self._emit(event)
        if Channel.BALANCES in channels:
            report = await self.rest.call(codec.account_report_request(account))
            snapshot = norm.balance_snapshot_from_report(report.accountData, ts=now)
            # `ts` of a REST snapshot is when it was asked for (the bridge reconciles by it).
            self._emit(msgspec.structs.replace(snapshot, ts=now))
        self._set_risk_states(StreamState.LIVE, "polled from the risk API")

    def _set_risk_states(self, state: StreamState, reason: str) -> None:
        for sub in self._risk_subs:
            if self._risk_states.get(sub) is state:
                continue
            self._risk_states[sub] = state
            self._risk_reasons[sub] = reason
            self._emit(
                StreamStatus(
                    venue=VENUE, ts=self.clock.time(), stream=sub.describe(), state=state, reason=reason
                )
            )

    # -- trading (io/primary/orders.py) ---------------------------------------------------------
    @property
    def echoes_client_order_id(self) -> bool:
        # Primary's reports name its own clOrdId; the `wsClOrdId` a socket submit carries comes back
        # on the first report only, and never from REST: unanswered submits are matched by shape.
        return False

    async def check_order(self, request: OrderRequest) -> None:
        """Refuse what the instrument details say Primary would (venues/primary/order_rules.py:
        order type, time in force, min/max quantity, quantity step, price tick, price limits). The
        details are today's catalogue (read once a day); if it cannot be read now, only the rules
        of every venue are checked and Primary checks the rest itself."""
        try:
            catalog = await self.catalog()
        except BrokerBridgeError as exc:
            logger.warning(
                "primary: instruments not loaded (%s); the order is checked by Primary alone", exc.message
            )
            check_common(request, venue=VENUE)
            return
        order_rules.check_order(request, catalog.get(request.symbol))

    async def admit(
        self, op: Literal["add", "amend", "cancel"], symbol: str, order_id: str | None = None
    ) -> None:
        """Nothing to wait for: Primary documents no per-instrument order rate counter (its API
        limits are per session and not published), so every order goes at once; a refusal by the
        venue still comes back as its typed error."""
        return None

    async def submit_order(self, request: OrderRequest, client_order_id: str) -> Submitted:
        return await self.order_entry.submit_order(request, client_order_id)

    async def cancel(self, order_id: str) -> Canceled:
        return await self.order_entry.cancel(order_id)

    async def amend_order(self, order_id: str, *, qty: Decimal | None, price: Decimal | None) -> Submitted:
        return await self.order_entry.amend_order(order_id, qty=qty, price=price)

    async def order_snapshot(self, since: float | None = None) -> list[AnyEvent]:
        """Every order of the account today (`order/all`: whatever `since` asks), as updates and
        fills not yet reported; orders of submits no answer came to carry their client order id."""
        return await self.order_entry.snapshot()

    # -- the Primary-compatible endpoint (server/primary/) --------------------------------------
    @property
    def account(self) -> str | None:
        """The one account this connector trades and reads (`primary.account`)."""
        return self.config.account

    async def instrument_details(self) -> tuple[InstrumentDetailWire, ...]:
        """Today's instrument details as Primary sent them (loaded with `catalog`, once a day)."""
        await self.catalog()
        return self._details

    async def rest_answer(self, request: Request[T]) -> Answered[T]:
        """A read the bridge holds no copy of, asked of Primary on this connector's one login: the
        answer and Primary's own body (re-served as it came)."""
        return await self.rest.answer(request)

    def proprietary_of(self, order_id: str) -> str:
        """The proprietary order `order_id` was booked under (the environment's default when the
        bridge has not seen it booked)."""
        return self.booked_proprietary(order_id) or self.environment.proprietary

    def booked_proprietary(self, order_id: str) -> str | None:
        """The proprietary order `order_id` was booked under; None when this run has not seen it
        booked (its ack or a report of it)."""
        return self.order_entry.booked_proprietary(order_id)

    def last_trade(self, symbol: str) -> EntryValue | None:
        """The product's last `LA` (date, price, size) from the socket, while a stream with `LA`
        (ticker, trades) is open or was open on this connection; None before one came."""
        return self.session.trades.last(symbol)

    # -- health ------------------------------------------------------------------------------
    def health(self) -> VenueHealth:
        streams = {"ws": self.stream.health()}
        risk = StreamHealth.polled({sub.describe(): state for sub, state in self._risk_states.items()})
        if risk is not None:
            streams["risk"] = risk
        return VenueHealth(
            venue=VENUE,
            credentials=self.config.has_credentials,
            token_expires_at=self.tokens.expires_at,
            streams=streams,
            rest_url=self.environment.rest_url,
            environment=self.environment.name,
        )


class _Hooks:
    def __init__(self, connector: PrimaryConnector) -> None:
        self._c = connector
        self._reconciled = False

    async def before_connect(self) -> None:
        await self._c.login_for_socket()

    async def on_connected(self) -> None:
        logger.info("primary: Connected to the Primary WebSocket (%s)", self._c.stream.url)
        self._reconciled = False

    async def on_signal(self, signal: Signal) -> None:
        match signal:
            case Subscribed(sub=sub) if sub.channel is Channel.EXECUTIONS and not self._reconciled:
                self._reconciled = True
                self._c.request_reconcile()
            case TokenRejected():
                self._c.relogin_before_reconnect()
            case OrderAnswered():
                self._c.order_entry.answered(signal)

    async def poll(self, subs: tuple[Subscription, ...]) -> list[AnyEvent]:
        return await self._c.poll_stream(subs)

    def pollable(self, sub: Subscription) -> bool:
        return sub.channel in _POLLABLE
