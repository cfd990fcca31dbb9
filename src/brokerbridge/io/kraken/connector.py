"""`KrakenConnector`: everything brokerbridge holds open to Kraken, for one set of credentials.

* a signed REST client (nonce-safe), also used for REST polling while a stream is down;
* the public and the private WebSocket v2 stream, each a pure `KrakenWsSession` driven by the
  shared `ConnectionSupervisor` (connect, replay, watchdog, backoff, statuses);
* the WebSocket token lifecycle: a (re)connect reuses the current token while it is younger than
  `token_refresh_interval` (Kraken accepts it within 15 min of issue) and fetches one otherwise,
  ahead of every queued REST call; refreshed every `token_refresh_interval`; when Kraken refuses
  it, a new one is fetched (retried with backoff until it comes) and what was refused is
  subscribed again on the same connection — from the second refusal in a row after 1 s, doubling
  up to 60 s (`io/token.py`), with one ERROR naming the permission and `brokerbridge doctor`;
* reconciliation after every private (re)connect, the first one included, after every gap in
  a private stream (a skipped sequence number), after a silence on it long enough to have lost
  frames, every `reconcile_interval` as a safety net, and whenever `executions` is live again
  after a break: REST BalanceEx, OpenOrders, ClosedOrders and TradesHistory (paged back to the fill
  watermark, `io/kraken/watermark.py`: the newest fill before which none can be missing), so
  balances are right and fills that happened while we were away are reported (once — the
  bridge's journal drops replays). One runs at a time (a request meanwhile runs it once more
  after); a failure is retried with backoff;
* backfill after a public reconnect: trades missed while disconnected from REST `Trades` (`since`
  the drop), candles from REST `OHLC`; only when REST cannot give them does the `Gap` naming the
  window reach consumers.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import random
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from typing import Any, Literal, Protocol, TypeVar

import msgspec

from brokerbridge.core.clock import Clock
from brokerbridge.core.config import KrakenConfig
from brokerbridge.core.errors import (
    BrokerBridgeError,
    ConfigError,
    InvalidRequest,
    SessionInvalid,
    TransportError,
    UnknownOrder,
    UnknownSymbol,
    VenueError,
)
from brokerbridge.core.events import (
    AnyEvent,
    BalanceSnapshot,
    BookSnapshot,
    Candle,
    Channel,
    Fill,
    Gap,
    OrderUpdate,
    Source,
    StreamState,
    StreamStatus,
    Subscription,
    Trade,
)
from brokerbridge.core.health import VenueHealth
from brokerbridge.core.orders import Canceled, OrderOutcome, OrderRequest, Submitted
from brokerbridge.core.rest import Request
from brokerbridge.core.signals import Resyncing, Signal, SilenceEnded, Subscribed, TokenRejected
from brokerbridge.io.http import HttpClient
from brokerbridge.io.kraken.closed_orders import ClosedOrderLog
from brokerbridge.io.kraken.rest import KrakenRestClient
from brokerbridge.io.kraken.watermark import FillWatermark
from brokerbridge.io.kraken.ws_orders import (
    BATCH_ADD_MAX,
    BATCH_ADD_MIN,
    BATCH_CANCEL_MAX,
    BATCH_CANCEL_MIN,
    DeadManSwitch,
    WsOrders,
    ack_result,
    batch_outcomes,
    rest_time_in_force,
    unanswered,
    ws_time_in_force,
)
from brokerbridge.io.refresh import keep_fresh
from brokerbridge.io.retry import Retrying
from brokerbridge.io.supervisor import ConnectionSupervisor, Emit
from brokerbridge.io.tasks import spawn
from brokerbridge.io.token import REFUSED_RETRY, TokenManager
from brokerbridge.io.ws import Connection, connect
from brokerbridge.venues.kraken import VENUE, order_rules, permissions
from brokerbridge.venues.kraken import normalize as norm
from brokerbridge.venues.kraken import rest as kraken_rest
from brokerbridge.venues.kraken.checksum import book_checksum
from brokerbridge.venues.kraken.messages import (
    AddOrderParams,
    AmendOrderParams,
    AnyTradingParams,
    BatchAddParams,
    BatchCancelParams,
    BatchOrder,
    CancelAfterParams,
    CancelOrderParams,
    MethodAck,
)
from brokerbridge.venues.kraken.rate_counter import TIERS, OrderAges, RateCounter, transaction_count
from brokerbridge.venues.kraken.rest_messages import HistoryPage
from brokerbridge.venues.kraken.session import KrakenWsSession
from brokerbridge.venues.order_checks import check_common

logger = logging.getLogger(__name__)

T = TypeVar("T")
P = TypeVar("P", bound=HistoryPage)  # a page of a paged history call
R = TypeVar("R")  # a row of it


class RedactingConnect(Protocol):
    def __call__(
        self, url: str, *, redact: Callable[[str], str] | None = None
    ) -> AbstractAsyncContextManager[Connection]: ...


HISTORY_POLL_INTERVAL = 10.0
# Seconds read back before the newest venue timestamp already seen: both ends are Kraken's clock,
# so this covers the engine stamping out of order, not clock skew.
HISTORY_MARGIN = 5.0
SYMBOLS_REFRESH = 3600.0  # seconds between AssetPairs reads (new listings are rare)
MAX_PAGES = 20  # REST history pages (50 rows each) read per reconciliation
RECENT_TRADE_IDS = 2000  # per symbol: trades already delivered, so a backfill repeats none
DISCONNECTED = "stream was disconnected"  # the supervisor's Gap reason for a reconnect
_PRIVATE = frozenset({Channel.BALANCES, Channel.EXECUTIONS})
_EXECUTIONS_STREAM = Subscription(venue=VENUE, channel=Channel.EXECUTIONS).describe()
_ORDER_CLOSED = frozenset({"filled", "canceled", "expired"})  # executions statuses of an ended order
_POLLABLE = frozenset(
    {Channel.TICKER, Channel.BOOK, Channel.TRADES, Channel.CANDLES, Channel.BALANCES, Channel.EXECUTIONS}
)


class KrakenConnector:
    venue = VENUE

    def __init__(
        self,
        config: KrakenConfig,
        *,
        emit: Emit,
        clock: Clock,
        rng: random.Random | None = None,
        http: HttpClient | None = None,
        ws_connect: RedactingConnect = connect,
        on_refused: Callable[[Subscription, VenueError], None] | None = None,
    ) -> None:
        self.config = config
        self._emit_out = emit
        self.clock = clock
        self.rest = KrakenRestClient(config, http=http, clock=clock)
        self.symbols = norm.SymbolMap()
        self._symbols_loaded = False
        # Order rules per pair from the same AssetPairs read (venues/kraken/order_rules.py).
        self.pair_rules: dict[str, order_rules.PairRules] = {}
        # Kraken's per-pair trading rate counter for the account's tier, and when each order was
        # placed, which a cancel's count depends on (venues/kraken/rate_counter.py).
        self.trade_counter = RateCounter(TIERS[config.tier])
        self.order_ages = OrderAges()
        self._symbols_task: asyncio.Task[None] | None = None
        self._rng = rng or random.Random()
        self.tokens = TokenManager(
            self._fetch_token,
            clock=clock,
            venue=VENUE,
            refresh_interval=config.token_refresh_interval,
            rng=self._rng,
            needed=lambda: bool(self.private_session.subscriptions),
            refused_retry=REFUSED_RETRY,
        )
        self.public_session = KrakenWsSession(
            private=False, idle_timeout=config.idle_timeout, wall_clock=clock.time
        )
        self.private_session = KrakenWsSession(
            private=True, idle_timeout=config.idle_timeout, wall_clock=clock.time
        )
        self.tokens.on_token = self._on_new_token
        common: dict[str, Any] = {
            "venue": VENUE,
            "emit": self._emit,
            "clock": clock,
            "backoff": config.backoff,
            "poll_after": config.poll_after,
            "poll_interval": config.poll_interval,
            "rng": rng,
            "connector": ws_connect,
            "on_refused": on_refused,
        }
        self.public = ConnectionSupervisor(
            name="public",
            url=config.ws_url,
            session=self.public_session,
            hooks=_PublicHooks(self),
            failure_message="Public channel connection failed",
            **common,
        )
        # Private frames carry the token: whatever logs them must mask it.
        private_common = {**common, "connector": functools.partial(ws_connect, redact=self.tokens.redact)}
        self.private = ConnectionSupervisor(
            name="private",
            url=config.ws_auth_url,
            session=self.private_session,
            hooks=_PrivateHooks(self),
            failure_message="Private channel connection failed",
            **private_common,
        )
        self._tasks: asyncio.TaskGroup | None = None
        self._last_trade_ts: dict[str, float] = {}  # newest trade seen per symbol (WS or REST)
        self._history_polled_at: float | None = None
        self._books: dict[Subscription, BookSnapshot] = {}
        self._recent_trades: dict[str, OrderedDict[str, None]] = {}  # symbol → trade ids delivered
        # Stream → newest trade delivered when it went down: the gap starts there, not when the
        # watchdog noticed the silence.
        self._down_from: dict[str, float] = {}
        self.fill_watermark = FillWatermark()  # reconciliation reads history back to here
        self._closed = ClosedOrderLog(margin=HISTORY_MARGIN)  # ClosedOrders read, and how far back
        self.backfills = 0  # gaps closed from REST
        self.reconciliations = 0  # completed reconciliations with REST
        self._reconcile_task: asyncio.Task[None] | None = None
        self._reconcile_due: set[Channel] = set()  # private channels to read back from REST
        self._orders_task: asyncio.Task[None] | None = None
        self._order_reader: asyncio.Task[None] | None = None  # reads orders for every caller in turn
        self._next_order_read: asyncio.Future[list[AnyEvent]] | None = None  # the read callers wait for
        self._next_order_reach: float | None = None  # how far back its closed orders must go
        self._orders_due = False  # a reconciliation read fills; its orders are still to read
        self._reconciled_at = clock.monotonic()  # when the last read of fills began
        self._orders_failure: str | None = None  # why reading orders failed for good, if it did
        self._renew_task: asyncio.Task[None] | None = None
        # Orders on the authenticated socket while it is live; Kraken's dead man's switch.
        self.ws_orders = WsOrders(
            self.private_session, self.private, clock=clock, timeout=config.order_timeout
        )
        self.dead_man = DeadManSwitch(
            self.cancel_all_orders_after,
            lambda: self.rest.call(kraken_rest.cancel_all_orders_after_request(0)),
            clock=clock,
            seconds=config.dead_man_switch_s,
            stop_within=config.order_timeout,
        )

    @property
    def journal_scope(self) -> str:
        """The account as the fills journal keys it: endpoint + key, hashed (no key on disk)."""
        ident = f"{self.config.rest_url}\n{self.config.api_key or ''}"
        return hashlib.sha256(ident.encode()).hexdigest()[:16]

    def restore_fills(self, fills: list[Fill]) -> None:
        """Fills journaled by an earlier run: reconciliation needs to read history back to them only."""
        if fills:
            self.fill_watermark.restore(max(f.ts for f in fills))

    # -- lifetime ----------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                tasks.create_task(self.public.run(), name="kraken-public")
                tasks.create_task(self.private.run(), name="kraken-private")
                tasks.create_task(self.tokens.run_refresher(), name="kraken-token-refresh")
                tasks.create_task(self._reconcile_periodically(), name="kraken-reconcile-timer")
                if self.config.dead_man_switch_s > 0 and self.config.has_credentials:
                    tasks.create_task(self.dead_man.run(), name="kraken-dead-man-switch")
                if self.public_session.subscriptions:  # added before this ran
                    self._symbols_task = tasks.create_task(
                        self._list_symbols_forever(), name="kraken-symbols"
                    )
        finally:
            self._tasks = None
            self._symbols_task = None

    async def aclose(self) -> None:
        if self._order_reader is not None:
            self._order_reader.cancel()
        await self.dead_man.disarm()  # over REST: the sockets are closed by now
        await self.tokens.aclose()  # before the HTTP client it runs on closes under it
        await self.rest.aclose()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None] | None:
        """Run background work owned by this connector's task group (None: not running)."""
        return spawn(self._tasks, coro, name)

    # -- subscriptions -----------------------------------------------------------------------
    def _supervisor(self, sub: Subscription) -> ConnectionSupervisor:
        return self.private if sub.channel.private else self.public

    def _session(self, sub: Subscription) -> KrakenWsSession:
        return self.private_session if sub.channel.private else self.public_session

    def validate(self, sub: Subscription) -> None:
        if sub.channel.private and not self.config.has_credentials:
            raise ConfigError(
                f"{sub.describe()} needs Kraken API credentials",
                remedy="set kraken.api_key and kraken.api_secret (or BROKERBRIDGE_KRAKEN_API_KEY/_SECRET)",
            )
        try:
            self._session(sub).validate(sub)
        except ValueError as exc:
            raise InvalidRequest(str(exc), venue=VENUE) from None
        if sub.symbol is not None and self._symbols_loaded and not self.symbols.knows(sub.symbol):
            raise self.unlisted(sub.symbol)

    def unlisted(self, symbol: str) -> UnknownSymbol:
        return UnknownSymbol(
            f"kraken does not list {symbol!r}",
            venue=VENUE,
            remedy="use a pair as Kraken's WebSocket v2 names it (BASE/QUOTE, e.g. BTC/USD)",
        )

    def symbol_listed(self, symbol: str) -> bool | None:
        """Whether AssetPairs lists `symbol` (None until the list is loaded)."""
        return self.symbols.knows(symbol) if self._symbols_loaded else None

    async def listed_symbols(self) -> frozenset[str]:
        """AssetPairs' symbols (WebSocket v2 names), read now if not yet, then every
        `SYMBOLS_REFRESH` as once a subscription came."""
        if self._symbols_task is None:
            self._symbols_task = self.spawn(self._list_symbols_forever(), "kraken-symbols")
        await self.ensure_symbols()
        return self.symbols.listed()

    async def catalog(self) -> None:
        """None: brokerbridge keeps no instrument catalogue for Kraken. AssetPairs is held only as
        the map of symbols (`symbol_listed`); its details are not served."""
        return None

    async def _list_symbols_forever(self) -> None:
        """From the first subscription on: load AssetPairs, and again every `SYMBOLS_REFRESH`; once
        loaded, a symbol Kraken does not list is refused by `validate`, before anything goes
        upstream. Until it loads (the first second or so; longer while REST fails), subscriptions
        go upstream unchecked and Kraken's own refusal answers them."""
        await keep_fresh(
            self._load_symbols,
            clock=self.clock,
            backoff=self.config.backoff,
            every=SYMBOLS_REFRESH,
            what="kraken AssetPairs",
            meanwhile="Kraken checks symbols itself until it loads",
        )

    async def _load_symbols(self) -> None:
        pairs = await self.rest.call(kraken_rest.asset_pairs_request())
        self.symbols.update(pairs)
        self.pair_rules.update(order_rules.pair_rules(pairs, self.symbols))
        self._symbols_loaded = True

    def account_channels(self) -> tuple[Channel, ...]:
        """Balances and executions on the private socket, with credentials."""
        return (Channel.BALANCES, Channel.EXECUTIONS) if self.config.has_credentials else ()

    def add(self, sub: Subscription) -> None:
        self.validate(sub)
        if self._symbols_task is None:  # the venue is used: learn what it lists
            self._symbols_task = self.spawn(self._list_symbols_forever(), "kraken-symbols")
        supervisor = self._supervisor(sub)
        self._session(sub).add(sub, self.clock.monotonic())
        supervisor.notify()

    def remove(self, sub: Subscription) -> None:
        supervisor = self._supervisor(sub)
        self._session(sub).remove(sub, self.clock.monotonic())
        supervisor.forget(sub)
        supervisor.notify()
        self._books.pop(sub, None)

    def status_of(self, sub: Subscription) -> StreamStatus:
        supervisor = self._supervisor(sub)
        return StreamStatus(
            venue=VENUE,
            ts=self.clock.time(),
            stream=sub.describe(),
            state=supervisor.sub_state(sub),
            reason=supervisor.sub_reason(sub) or "current state",
            reconnects=supervisor.reconnects,
        )

    def book_snapshot(self, sub: Subscription) -> BookSnapshot | None:
        book = self.public_session.book(sub)  # may be deeper than `sub`: cut to its depth
        if book is None:
            return None
        bids, asks = book.bids_levels(sub.depth), book.asks_levels(sub.depth)
        return BookSnapshot(
            venue=VENUE,
            ts=self.clock.time(),
            symbol=sub.symbol or "",
            depth=sub.depth,
            bids=bids,
            asks=asks,
            # Kraken's checksum lets whoever receives this book verify it, as a stream reader can.
            checksum=book_checksum(((lv.price, lv.qty) for lv in asks), ((lv.price, lv.qty) for lv in bids)),
        )

    # -- events ------------------------------------------------------------------------------
    def _emit(self, event: AnyEvent) -> None:
        if (
            isinstance(event, StreamStatus)
            and event.stream == _EXECUTIONS_STREAM
            and not self.private.showing_degraded
        ):
            # A status that only shows a REST read failing says nothing of the subscription:
            # counted as a break, every failed read made its own reconciliation unprovable and
            # asked for another, for as long as reads failed now and then.
            self._executions_status(event.state)
        match event:
            case Trade():
                self._last_trade_ts[event.symbol] = max(event.ts, self._last_trade_ts.get(event.symbol, 0.0))
                recent = self._recent_trades.setdefault(event.symbol, OrderedDict())
                recent[event.trade_id] = None
                if len(recent) > RECENT_TRADE_IDS:
                    recent.popitem(last=False)
            case Fill():
                self.fill_watermark.fill_seen(event.ts)
            case OrderUpdate():
                self._order_aged(event)
            case BalanceSnapshot(source=Source.WS):
                logger.info("kraken: Balance snapshot received: %d assets", len(event.balances))
                # A snapshot proves the token as a first subscription does, also after a resync
                # (which emits no Subscribed): a later refusal is a new streak, not the second
                # of one (chaos seed 918273: the permission ERROR for a token that served 22 s).
                self.tokens.accepted(self.private_session.token)
            case StreamStatus(state=StreamState.RECONNECTING) if event.stream not in self._down_from:
                symbol = event.stream.split(":")[2] if event.stream.count(":") >= 2 else ""
                if symbol in self._last_trade_ts:
                    self._down_from[event.stream] = self._last_trade_ts[symbol]
            case Gap(reason=reason) if reason == DISCONNECTED and self._backfillable(event.stream):
                if self._tasks is not None:
                    self._tasks.create_task(self._backfill(event), name=f"kraken-backfill-{event.stream}")
                    return
        self._emit_out(event)

    def _executions_status(self, state: StreamState) -> None:
        """Follow the executions subscription's continuity for the fill watermark: every time it
        is live again after a break, history is read back over the break."""
        if state is not StreamState.LIVE:
            self.fill_watermark.stream_broken()
            return
        self.fill_watermark.stream_live()
        if not self.fill_watermark.proven:
            # After a reconnect this joins the request the first subscription made; after a
            # resync it reads again what a read begun before the fresh snapshot could not prove.
            self.request_reconcile(frozenset({Channel.EXECUTIONS}))

    # -- backfill ----------------------------------------------------------------------------
    def _backfillable(self, stream: str) -> bool:
        return any(
            sub.describe() == stream and sub.channel in (Channel.TRADES, Channel.CANDLES)
            for sub in self.public_session.subscriptions
        )

    async def _backfill(self, gap: Gap) -> None:
        """Fill a reconnect's gap from REST; the Gap goes to consumers only if that fails."""
        sub = next((s for s in self.public_session.subscriptions if s.describe() == gap.stream), None)
        since = min(gap.start, self._down_from.pop(gap.stream, gap.start))
        gap = msgspec.structs.replace(gap, start=since)
        if sub is None or sub.symbol is None:
            return  # unsubscribed meanwhile: nobody to tell
        try:
            await self.ensure_symbols()
            events = await self._missed(sub, since)
        except BrokerBridgeError as exc:
            logger.warning("kraken: backfilling %s from REST failed: %s", gap.stream, exc)
            self._emit_out(
                msgspec.structs.replace(gap, reason=f"{gap.reason}; REST backfill failed: {exc.message}")
            )
            return
        except Exception as exc:  # a bug must not hide the gap
            logger.exception("kraken: backfilling %s failed unexpectedly (a bug)", gap.stream)
            self._emit_out(msgspec.structs.replace(gap, reason=f"{gap.reason}; backfill failed: {exc!r}"))
            return
        self.backfills += 1
        logger.info("kraken: %s: %d events backfilled from REST after a reconnect", gap.stream, len(events))
        for event in events:
            self._emit(event)

    async def _missed(self, sub: Subscription, since: float) -> list[AnyEvent]:
        """What `sub` may have missed since `since`: trades not yet delivered, candles since then."""
        assert sub.symbol is not None
        pair = self.symbols.to_rest(sub.symbol)
        if sub.channel is Channel.TRADES:
            trades = await self.rest.call(kraken_rest.trades_request(pair, since))
            recent = self._recent_trades.setdefault(sub.symbol, OrderedDict())
            return [
                t
                for t in norm.trades_from_rest(trades, symbols=self.symbols)
                if t.ts >= since and t.trade_id not in recent
            ]
        ohlc = await self.rest.call(kraken_rest.ohlc_request(pair, sub.interval, since))
        candles: list[Candle] = norm.candles_from_rest(ohlc, interval=sub.interval, symbols=self.symbols)
        return [c for c in candles if c.begin + sub.interval * 60 > since]

    # -- REST helpers ------------------------------------------------------------------------
    def _on_new_token(self, token: str) -> None:
        self.private_session.set_token(token)
        if not self.private.connected:
            self.private.retry_now()  # a reconnect waiting for want of a token goes now

    async def _fetch_token(self) -> tuple[str, float]:
        # A private stream is down until this answers: ahead of backfills and reconciliations.
        result = await self.rest.call(kraken_rest.websockets_token_request(), priority=True)
        return result.token, float(result.expires)

    async def ensure_symbols(self) -> None:
        if not self._symbols_loaded:
            await self._load_symbols()

    def request_reconcile(self, channels: frozenset[Channel] = _PRIVATE) -> None:
        """Reconcile what `channels` carry with REST soon. Requests coalesce: what is already due
        is read once; a request while a read is under way is read again after it. Executions
        alone are not read while the fill watermark is proven (nothing can be missing)."""
        self._reconcile_due |= channels
        if self._reconcile_task is None:
            self._reconcile_task = self.spawn(self._reconcile_until_done(), "kraken-reconcile")

    async def _reconcile_periodically(self) -> None:
        """The safety net under sequence numbers and the silence check: a frame lost in a stall
        shorter than a heartbeat, with no private frame after it, shows nowhere else. Runs when no
        reconciliation began for `reconcile_interval` (a busy link reconciles often anyway: every
        read back costs Kraken call-counter points the others then wait for)."""
        interval = self.config.reconcile_interval
        while True:
            due = self._reconciled_at + interval
            now = self.clock.monotonic()
            if now < due:
                await self.clock.sleep(due - now)
                continue
            if self.private_session.subscriptions and self.private.connected:
                self.request_reconcile()
            self._reconciled_at = max(self._reconciled_at, now)  # the next one: an interval on

    async def _reconcile_until_done(self) -> None:
        try:
            retrying = Retrying(
                self.config.backoff,
                clock=self.clock,
                rng=self._rng,
                what="kraken: reconciliation with REST",
                log=logger,
            )
            while self._reconcile_due:
                due, self._reconcile_due = set(self._reconcile_due), set()
                if due == {Channel.EXECUTIONS} and self.fill_watermark.proven:
                    # Asked for when executions went live again, and a read begun since has
                    # covered the break: the stream, unbroken since, holds the rest.
                    continue
                try:
                    await self.reconcile_private(due)
                except BrokerBridgeError as exc:
                    self._reconcile_due |= due  # what was not read yet
                    # What happened while away is unknown until this succeeds: say so.
                    self.private.degrade(f"reconciliation with REST failing: {exc}")
                    if not await retrying.after_failure(exc):
                        return
                except Exception:  # a bug here must not take the streams down with it
                    logger.exception("kraken: reconciliation with REST failed unexpectedly (a bug)")
                    self.private.degrade("reconciliation with REST failing (internal error)")
                    return
            self.private.degrade(self._orders_failure)
        finally:
            self._reconcile_task = None
            self._reconcile_due.clear()

    async def reconcile_private(self, due: set[Channel]) -> None:
        """Make what `due` names agree with REST: BALANCES (BalanceEx) and EXECUTIONS (missed
        fills here, then the orders in `_read_orders_until_done`). Each part is published as soon
        as it is read and then removed from `due`, so a failure leaves in it only what is still
        to read."""
        await self.ensure_symbols()
        if Channel.BALANCES in due:
            sent_at = self.clock.time()  # `ts` of a REST snapshot = when it was asked for
            balances = await self._read(kraken_rest.balance_ex_request())
            self._emit(norm.balances_from_rest(balances, received=sent_at))
            due.discard(Channel.BALANCES)
        if Channel.EXECUTIONS not in due:
            self.reconciliations += 1
            return
        # Taken before any read: a fill made between a read and the subscription's start is in
        # neither the read nor the stream.
        read = self.fill_watermark.read_started()
        self._reconciled_at = self.clock.monotonic()
        since = self.fill_watermark.complete_to
        fills = await self._fills_since(since)
        self.fill_watermark.fills_read(f.ts for f in fills)
        self.fill_watermark.read_done(read)
        self._history_polled_at = self.clock.monotonic()
        logger.info(
            "kraken: fills reconciled with REST: %d since %s%s",
            len(fills),
            "the newest page" if since is None else f"{since - HISTORY_MARGIN:.3f}",
            "" if self.fill_watermark.proven else " (the stream is not yet proven complete)",
        )
        for fill in fills:
            self._emit(fill)
        due.discard(Channel.EXECUTIONS)
        # The orders are read apart: those reads are paged and paced on Kraken's call counter
        # (tens of seconds when it is busy), and the fills and balances of the next break must
        # not wait for all of them: they queue behind one page at most (chaos seeds 315753 and
        # 953047 lost the fills of a late stall that waited 40 s behind every page before; ahead
        # of the queue, they starved the order reads that settle unknown submits).
        self._orders_due = True
        if self._orders_task is None:
            self._orders_task = self.spawn(self._read_orders_until_done(), "kraken-orders")

    async def _read_orders_until_done(self) -> None:
        """Open orders and orders closed since the last read, for every reconciliation that read
        fills (coalesced: a request while reading is read once more after). A reconciliation
        counts as done when its orders are read."""
        try:
            while self._orders_due:
                self._orders_due = False
                try:
                    orders = await self.order_snapshot()  # retryable failures are retried inside
                except BrokerBridgeError as exc:
                    self._orders_failure = f"reconciliation with REST failing: {exc}"
                    self.private.degrade(self._orders_failure)
                    logger.error("kraken: reading orders from REST failed for good: %s", exc)
                    return
                except Exception:  # a bug here must not take the streams down with it
                    self._orders_failure = "reconciliation with REST failing (internal error)"
                    self.private.degrade(self._orders_failure)
                    logger.exception("kraken: reading orders from REST failed unexpectedly (a bug)")
                    return
                if self._orders_failure is not None:
                    self._orders_failure = None
                    if self._reconcile_task is None:
                        self.private.degrade(None)
                logger.info("kraken: orders reconciled with REST: %d orders", len(orders))
                for event in orders:
                    self._emit(event)
                self.reconciliations += 1
        finally:
            self._orders_task = None

    def renew_token(self, error: VenueError) -> None:
        """Kraken refused the token on the live private socket: fetch another (with backoff, until
        it comes or the socket closes — a reconnect fetches its own) and subscribe again to what
        was refused. Tokens refused one after the other are replaced ever more slowly (TokenManager)
        and reported once at ERROR: Kraken issues them and refuses each, so waiting will not help."""
        in_a_row = self.tokens.reject(self.private_session.token)
        if in_a_row <= 1:
            logger.log(
                logging.WARNING if in_a_row else logging.DEBUG,
                "kraken: WebSocket token rejected (%s); requesting a new one",
                error.message,
            )
        else:
            why = (
                f"Kraken refused {in_a_row} WebSocket tokens in a row, each right after issuing it "
                f"({error.code or error.message}): the API key may lack the “{permissions.WEBSOCKETS.label}” "
                "permission, or kraken.ws_auth_url is not the same Kraken as kraken.rest_url"
            )
            wait = self.tokens.next_fetch_in
            # Once per streak: the next refusals are the same news (they come at most once a minute).
            logger.log(
                logging.ERROR if in_a_row == 2 else logging.DEBUG,
                "kraken: %s; private streams stay down, a new token is asked for in %.0f s (then up to "
                "every %.0f s) — %s",
                why,
                wait,
                REFUSED_RETRY.cap,
                permissions.WEBSOCKETS.remedy(),
            )
            self.private.explain(f"{why}; next token in {wait:.0f} s")
        if self._renew_task is None:
            self._renew_task = self.spawn(self._renew_until_done(), "kraken-token-renew")

    async def _renew_until_done(self) -> None:
        try:
            delays = self.config.backoff.delays(self._rng)
            while self.private_session.connected:
                try:
                    await self.tokens.get()
                except BrokerBridgeError as exc:
                    delay = max(next(delays), 0.1)
                    logger.warning("kraken: New WebSocket token failed (%s); retrying in %.1fs", exc, delay)
                    self.private.explain(f"waiting for a new WebSocket token: {exc}")
                    await self.clock.sleep(delay)
                    continue
                self.private_session.resubscribe_private(self.clock.monotonic())
                self.private.notify()
                return
        finally:
            self._renew_task = None

    async def order_snapshot(self, since: float | None = None) -> list[AnyEvent]:
        """Open orders, and orders closed since the last read (or the newest page) — and, with
        `since` (a Kraken time), every order closed since then (the reads so far kept them, or
        this one reaches back): every order the venue has that we might not know of, e.g. one
        whose submit went unanswered (`ClosedOrderLog`).

        Callers share reads: reconciliation and the settling of unknown submits used to read
        side by side, each paging on the call counter, and each read moved the shared start of
        the next — so one could miss the order the other had just read, and an unanswered
        submit that had arrived was settled as never arrived. A caller gets the first read that
        begins after it asked (one under way may predate what it asks about), reaching back as
        far as its furthest caller asked."""
        loop = asyncio.get_running_loop()
        if self._next_order_read is None:
            self._next_order_read = loop.create_future()
            # Retrieved here so a read nobody waits for any more does not log as unretrieved.
            self._next_order_read.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._next_order_reach = since
        elif since is not None:
            reach = self._next_order_reach
            self._next_order_reach = since if reach is None else min(reach, since)
        waiting = self._next_order_read
        if self._order_reader is None:
            self._order_reader = loop.create_task(self._read_orders_in_turn(), name="kraken-order-reads")
        return await asyncio.shield(waiting)

    async def _read_orders_in_turn(self) -> None:
        try:
            while (read := self._next_order_read) is not None:
                self._next_order_read = None
                reach, self._next_order_reach = self._next_order_reach, None
                try:
                    read.set_result(await self._read_orders(reach))
                except asyncio.CancelledError:
                    read.cancel()
                    raise
                except Exception as exc:  # every waiter gets it; the reader goes on
                    read.set_exception(exc)
        finally:
            self._order_reader = None
            if self._next_order_read is not None and not self._next_order_read.done():
                self._next_order_read.cancel()  # nobody left to read it
                self._next_order_read = None

    async def _read_orders(self, reach: float | None) -> list[AnyEvent]:
        opened = await self._read(kraken_rest.open_orders_request())
        events: list[AnyEvent] = list(norm.orders_from_rest(opened.open, symbols=self.symbols))
        # After the newest order read before (every read is paced at 2 points a page — reading
        # back a fixed minute each time starved the other calls while unanswered submits were
        # being settled), or back to `reach` when the reads so far do not cover it.
        start = self._closed.start(reach)
        rows, complete = await self._paged(kraken_rest.closed_orders_request, lambda page: page.closed, start)
        closed = norm.orders_from_rest(rows, symbols=self.symbols)
        self._closed.read(closed, start=start, complete=complete)
        if reach is not None:
            read = {o.order_id for o in closed}
            closed += [o for o in self._closed.since(reach) if o.order_id not in read]
        events.extend(closed)
        return events

    async def _fills_since(self, since: float | None) -> list[Fill]:
        """TradesHistory back to `since`, a Kraken timestamp (less a margin for fills the engine
        stamped out of order); the newest page if None."""
        rows = await self._pages(
            kraken_rest.trades_history_request,
            lambda page: page.trades,
            None if since is None else since - HISTORY_MARGIN,
        )
        return norm.fills_from_rest(rows, symbols=self.symbols)

    async def _read(self, request: Request[T]) -> T:
        """A private read that reconciliation (or settling an unknown order) cannot do without: a
        retryable failure (5xx, EService:Unavailable, a rate limit, no answer) is retried with the
        connection's backoff, so a read of several pages keeps the pages it has. Started over
        after every failure, such a read — each page waiting seconds for room on Kraken's call
        counter — rarely finished while failures came every few seconds, and what it was to
        recover (orders closed, unknown submits) waited for minutes."""
        delays = self.config.backoff.delays(self._rng)
        next(delays)  # the immediate attempt is the first one, not a retry
        degraded = False
        while True:
            try:
                result = await self.rest.call(request)
            except BrokerBridgeError as exc:
                if not exc.retryable:
                    raise
                # What happened while away is unknown until this read succeeds: the private
                # streams say so (stale, with the reason) while it is retried.
                self.private.degrade(f"reconciliation with REST failing: {exc}")
                degraded = True
                delay = next(delays)
                logger.warning("kraken: %s failed (%s); retrying in %.1fs", request.name, exc, delay)
                await self.clock.sleep(delay)
                continue
            if degraded:
                # REST answers again: the streams are not held stale for the rest of a long
                # (paged, counter-paced) reconciliation because one read was retried.
                self.private.degrade(None)
            return result

    async def _pages(
        self,
        page_request: Callable[[float | None, int], Request[P]],
        rows_of: Callable[[P], dict[str, R]],
        since: float | None,
    ) -> dict[str, R]:
        """Rows of a paged private history call (newest first, 50 a page) back to `since`."""
        rows, _ = await self._paged(page_request, rows_of, since)
        return rows

    async def _paged(
        self,
        page_request: Callable[[float | None, int], Request[P]],
        rows_of: Callable[[P], dict[str, R]],
        since: float | None,
    ) -> tuple[dict[str, R], bool]:
        """`_pages`, and whether they reached `since` (with none: the account's first row)."""
        rows: dict[str, R] = {}
        for page in range(MAX_PAGES):
            request = page_request(since, page)
            result = await self._read(request)
            batch = rows_of(result)
            rows.update(batch)
            complete = not batch or len(rows) >= (result.count or 0)
            if since is None or complete:
                return rows, complete
        logger.warning("kraken: %s has more than %d pages since the last read", request.name, MAX_PAGES)
        return rows, False

    async def poll_public(self, subs: tuple[Subscription, ...]) -> list[AnyEvent]:
        await self.ensure_symbols()
        events: list[AnyEvent] = []
        tickers = [s.symbol for s in subs if s.channel is Channel.TICKER and s.symbol]
        if tickers:
            received = self.clock.time()
            result = await self.rest.call(
                kraken_rest.ticker_request([self.symbols.to_rest(t) for t in tickers])
            )
            for pair, info in result.items():
                events.append(norm.ticker_from_rest(pair, info, symbols=self.symbols, received=received))
        # One Depth call per symbol, at the deepest book depth wanted; every depth is cut from it.
        book_depths: dict[str, set[int]] = {}
        for sub in subs:
            if sub.channel is Channel.BOOK and sub.symbol is not None:
                book_depths.setdefault(sub.symbol, set()).add(sub.depth)
        for symbol, depths in book_depths.items():
            received = self.clock.time()
            count = min(max(depths), 500)
            books = await self.rest.call(kraken_rest.depth_request(self.symbols.to_rest(symbol), count))
            for key, book in books.items():
                events.extend(
                    norm.book_from_rest(key, book, depth=depth, symbols=self.symbols, received=received)
                    for depth in sorted(depths)
                )
        for sub in subs:
            if sub.symbol is None:
                continue
            pair = self.symbols.to_rest(sub.symbol)
            if sub.channel is Channel.TRADES:
                trades = norm.trades_from_rest(
                    await self.rest.call(kraken_rest.trades_request(pair)), symbols=self.symbols
                )
                newer = [t for t in trades if t.ts > self._last_trade_ts.get(sub.symbol, 0.0)]
                events.extend(newer)
            elif sub.channel is Channel.CANDLES:
                ohlc = await self.rest.call(kraken_rest.ohlc_request(pair, sub.interval))
                candles = norm.candles_from_rest(ohlc, interval=sub.interval, symbols=self.symbols)
                events.extend(candles[-2:])  # the last closed candle and the forming one
        return events

    async def poll_private(self, subs: tuple[Subscription, ...]) -> list[AnyEvent]:
        await self.ensure_symbols()
        events: list[AnyEvent] = []
        channels = {s.channel for s in subs}
        if Channel.BALANCES in channels:
            sent_at = self.clock.time()  # `ts` of a REST snapshot = when it was asked for
            balances = await self.rest.call(kraken_rest.balance_ex_request())
            events.append(norm.balances_from_rest(balances, received=sent_at))
        if Channel.EXECUTIONS in channels:
            open_orders = await self.rest.call(kraken_rest.open_orders_request())
            events.extend(norm.orders_from_rest(open_orders.open, symbols=self.symbols))
            now = self.clock.monotonic()
            # TradesHistory costs 2 of Kraken's call counter: often enough to report fills within
            # seconds, rarely enough to leave room for orders and tokens.
            if self._history_polled_at is None or now - self._history_polled_at >= HISTORY_POLL_INTERVAL:
                self._history_polled_at = now
                history = await self.rest.call(kraken_rest.trades_history_request())
                events.extend(norm.fills_from_rest(history.trades, symbols=self.symbols))
        return events

    # -- trading ---------------------------------------------------------------------------
    async def check_order(self, request: OrderRequest) -> None:
        """Refuse what AssetPairs says Kraken would (venues/kraken/order_rules.py). AssetPairs is
        read the first time; if it cannot be read now, only the rules of every venue are checked
        and Kraken checks the rest itself."""
        try:
            await self.ensure_symbols()
        except BrokerBridgeError as exc:
            logger.warning(
                "kraken: AssetPairs not loaded (%s); the order is checked by Kraken alone", exc.message
            )
            check_common(request, venue=VENUE)
            return
        rules = self.pair_rules.get(request.symbol) or self.pair_rules.get(self.symbols.to_ws(request.symbol))
        order_rules.check_order(request, rules)

    async def admit(
        self, op: Literal["add", "amend", "cancel"], symbol: str, order_id: str | None = None
    ) -> None:
        """Charge Kraken's per-pair trading rate counter for `op` (a cancel and an amend by the
        order's age) and return when it may be sent: at once, or after waiting on the clock while
        the wait is within `kraken.order_queue_s`; beyond that `OrderRefused(rule="rate_limit")`
        says when to retry. The pair is `symbol`, or the one the order was placed on."""
        now = self.clock.time()
        placed = self.order_ages.get(order_id) if order_id else None
        pair = symbol or (placed.symbol if placed is not None else "")
        if not pair:  # an order of a pair the bridge never saw: nothing to count it against
            return
        pair = self.symbols.to_ws(pair)  # one counter per pair, whichever of its names it came by
        age = self.order_ages.age(order_id, now) if order_id else None
        count = transaction_count(op, age)
        what = {"add": "a new order", "amend": f"amending {order_id}", "cancel": f"cancelling {order_id}"}[op]
        wait = self.trade_counter.admit(
            pair, count, self.clock.monotonic(), max_wait=self.config.order_queue_s, what=what
        )
        if op == "amend" and order_id:
            self.order_ages.placed(order_id, pair, now)  # an amend starts the order's age again
        if wait <= 0:
            return
        try:
            await self.clock.sleep(wait)
        except asyncio.CancelledError:
            # Nothing was sent: the reservation goes back (the counter only ever over-counts).
            self.trade_counter.release(pair, count, self.clock.monotonic())
            raise

    def _order_aged(self, update: OrderUpdate) -> None:
        """Keep when each open order of the account was placed (also those of other clients and
        earlier runs, seen on `executions`): a cancel's count depends on it."""
        if update.status in _ORDER_CLOSED:
            self.order_ages.closed(update.order_id)
        elif update.symbol:
            self.order_ages.seen(update.order_id, update.symbol, update.ts)

    async def place_order(
        self,
        *,
        symbol: str,
        side: str,
        order_type: str,
        qty: Decimal,
        price: Decimal | None = None,
        client_order_id: str | None = None,
        time_in_force: str | None = None,
    ) -> str:
        """Submit an order over REST (`AddOrder`: `submit_order`'s way while the socket is down);
        returns Kraken's order id. Follow it on `executions`.

        A network failure here leaves the order's fate UNKNOWN, not rejected: the error says so,
        and the order (if it was placed) shows up in executions / OpenOrders reconciliation.
        """
        await self.ensure_symbols()
        request = kraken_rest.add_order_request(
            pair=self.symbols.to_rest(symbol),
            side=side,
            order_type=order_type,
            volume=qty,
            price=price,
            cl_ord_id=client_order_id,
            time_in_force=time_in_force,
        )
        try:
            result = await self.rest.call(request)
        except TransportError as exc:
            raise unanswered(f"AddOrder {side} {qty} {symbol}", exc, client_order_id) from exc
        return result.txid[0]

    async def cancel_order(self, order_id: str) -> int:
        result = await self.rest.call(kraken_rest.cancel_order_request(order_id))
        return result.count

    @property
    def echoes_client_order_id(self) -> bool:
        # Kraken echoes `cl_ord_id` on every report of the order (WS executions, REST orders).
        return True

    # The order API's path (io/connector.py): the authenticated WebSocket while it is live, with
    # the session's token (the one its subscriptions carry: no token is fetched per order); REST
    # while it is not. A WS request unanswered within `order_timeout`, or on a connection that
    # ends first, has an unknown outcome: TransportError, which the Bridge settles from the
    # venue's orders. A request Kraken refused for its token placed nothing: it goes over REST.
    @property
    def orders_over_ws(self) -> bool:
        """Whether order requests go on the authenticated socket now (`WsOrders.live`)."""
        return self.ws_orders.live

    async def submit_order(self, request: OrderRequest, client_order_id: str) -> Submitted:
        what = f"add_order {request.side.value} {request.qty} {request.symbol}"
        if self.orders_over_ws:
            params = AddOrderParams(
                order_type=request.type,
                side=request.side.value,
                order_qty=request.qty,
                symbol=request.symbol,
                limit_price=request.price if request.type == "limit" else None,
                time_in_force=ws_time_in_force(request.time_in_force),
                cl_ord_id=client_order_id,
            )
            ack = await self._on_socket(params, what, client_order_id)
            if ack is not None:
                order_id = ack_result(ack).order_id or ""
                self.order_ages.placed(order_id, request.symbol, self.clock.time())
                return Submitted(order_id=order_id, via="ws")
        order_id = await self.place_order(
            symbol=request.symbol,
            side=request.side.value,
            order_type=request.type,
            qty=request.qty,
            price=request.price,
            client_order_id=client_order_id,
            time_in_force=rest_time_in_force(request.time_in_force),
        )
        # Its age from the ack: no earlier than Kraken placed it, so a cancel never counts too little.
        self.order_ages.placed(order_id, request.symbol, self.clock.time())
        return Submitted(order_id=order_id, via="rest")

    async def cancel(self, order_id: str) -> Canceled:
        if self.orders_over_ws:
            params = CancelOrderParams(order_id=[order_id])
            if await self._on_socket(params, f"cancel_order {order_id}") is not None:
                return Canceled(count=1, via="ws")
        return Canceled(count=await self.cancel_order(order_id), via="rest")

    async def amend_order(self, order_id: str, *, qty: Decimal | None, price: Decimal | None) -> Submitted:
        """Kraken's amend: the order keeps its ids (and its place in the book where it can)."""
        if qty is None and price is None:
            raise InvalidRequest(
                f"amending order {order_id}: nothing to change", venue=VENUE, remedy="give qty, price or both"
            )
        if self.orders_over_ws:
            params = AmendOrderParams(order_id=order_id, order_qty=qty, limit_price=price)
            ack = await self._on_socket(params, f"amend_order {order_id}")
            if ack is not None:
                return Submitted(order_id=ack_result(ack).order_id or order_id, via="ws")
        request = kraken_rest.amend_order_request(order_id, order_qty=qty, limit_price=price)
        try:
            await self.rest.call(request)
        except TransportError as exc:
            raise unanswered(f"AmendOrder {order_id}", exc) from exc
        return Submitted(order_id=order_id, via="rest")

    async def batch_add(
        self, requests: list[OrderRequest], client_order_ids: list[str]
    ) -> list[OrderOutcome]:
        """2 to 15 orders on one symbol in one request (Kraken checks the batch as a whole: one
        bad order refuses it all, raised here); each order's outcome, in order. Kraken's engine
        may still refuse one alone (funds): its outcome is `rejected`. With the socket down the
        orders go one by one over REST, each with its own outcome."""
        if len(requests) != len(client_order_ids):
            raise InvalidRequest("batch_add: one client order id per order", venue=VENUE)
        if not BATCH_ADD_MIN <= len(requests) <= BATCH_ADD_MAX:
            raise InvalidRequest(
                f"batch_add takes {BATCH_ADD_MIN} to {BATCH_ADD_MAX} orders, got {len(requests)}",
                venue=VENUE,
                remedy="split the orders into batches of at most 15 (a single order: submit it)",
            )
        symbols = {r.symbol for r in requests}
        if len(symbols) != 1:
            raise InvalidRequest(
                f"batch_add orders must share one symbol, got {sorted(symbols)}",
                venue=VENUE,
                remedy="send one batch per symbol",
            )
        if self.orders_over_ws:
            params = BatchAddParams(
                symbol=requests[0].symbol,
                orders=[
                    BatchOrder(
                        order_type=r.type,
                        side=r.side.value,
                        order_qty=r.qty,
                        limit_price=r.price if r.type == "limit" else None,
                        time_in_force=ws_time_in_force(r.time_in_force),
                        cl_ord_id=cid,
                    )
                    for r, cid in zip(requests, client_order_ids, strict=True)
                ],
            )
            ack = await self._on_socket(params, f"batch_add of {len(requests)} {requests[0].symbol}")
            if ack is not None:
                return batch_outcomes(ack, client_order_ids)
        outcomes = []
        for request, cid in zip(requests, client_order_ids, strict=True):
            try:
                submitted = await self.submit_order(request, cid)
            except TransportError as exc:
                outcomes.append(OrderOutcome(client_order_id=cid, status="unknown", reason=exc.message))
            except VenueError as exc:
                outcomes.append(
                    OrderOutcome(client_order_id=cid, status="rejected", error=exc.code, reason=exc.message)
                )
            else:
                outcomes.append(
                    OrderOutcome(
                        client_order_id=cid, status="accepted", order_id=submitted.order_id, via=submitted.via
                    )
                )
        return outcomes

    async def batch_cancel(self, order_ids: list[str]) -> Canceled:
        """2 to 50 orders by Kraken id in one request; Kraken answers how many it canceled (ids no
        longer open count 0). With the socket down: one REST CancelOrder each."""
        if not BATCH_CANCEL_MIN <= len(order_ids) <= BATCH_CANCEL_MAX:
            raise InvalidRequest(
                f"batch_cancel takes {BATCH_CANCEL_MIN} to {BATCH_CANCEL_MAX} orders, got {len(order_ids)}",
                venue=VENUE,
                remedy="split the ids into batches of at most 50 (a single order: cancel it)",
            )
        if self.orders_over_ws:
            ack = await self._on_socket(BatchCancelParams(orders=list(order_ids)), "batch_cancel")
            if ack is not None:
                return Canceled(count=ack_result(ack).count or 0, via="ws")
        count = 0
        for order_id in order_ids:
            try:
                count += await self.cancel_order(order_id)
            except UnknownOrder:
                continue  # no longer open: as the batch would count it, 0
        return Canceled(count=count, via="rest")

    async def cancel_all_orders_after(self, seconds: int) -> str | None:
        """Arm Kraken's dead man's switch `seconds` from now (0: disarm); when it fires (RFC 3339,
        Kraken's word), None when disarmed."""
        if self.orders_over_ws:
            ack = await self._on_socket(CancelAfterParams(timeout=seconds), "cancel_all_orders_after")
            if ack is not None:
                return ack_result(ack).triggerTime if seconds > 0 else None
        answer = await self.rest.call(kraken_rest.cancel_all_orders_after_request(seconds))
        return answer.triggerTime if seconds > 0 else None

    async def _on_socket(
        self, params: AnyTradingParams, what: str, client_order_id: str | None = None
    ) -> MethodAck | None:
        """Kraken's answer on the authenticated socket; None when Kraken refused the token the
        request carried (nothing was carried out: the caller goes over REST instead)."""
        try:
            return await self.ws_orders.request(params, what, client_order_id=client_order_id)
        except SessionInvalid:
            return None

    # -- health ------------------------------------------------------------------------------
    def health(self) -> VenueHealth:
        return VenueHealth(
            venue=VENUE,
            credentials=self.config.has_credentials,
            token_expires_at=self.tokens.expires_at,
            streams={supervisor.name: supervisor.health() for supervisor in (self.public, self.private)},
            rest_url=self.config.rest_url,
        )


class _PublicHooks:
    def __init__(self, connector: KrakenConnector) -> None:
        self._c = connector

    async def before_connect(self) -> None:
        return None

    async def on_connected(self) -> None:
        logger.info("kraken: Connected to public channels")

    async def on_signal(self, signal: Signal) -> None:
        return None

    async def poll(self, subs: tuple[Subscription, ...]) -> list[AnyEvent]:
        return await self._c.poll_public(subs)

    def pollable(self, sub: Subscription) -> bool:
        return sub.channel in _POLLABLE


class _PrivateHooks:
    def __init__(self, connector: KrakenConnector) -> None:
        self._c = connector
        self._reconciled = False

    async def before_connect(self) -> None:
        if not self._c.config.has_credentials:
            raise ConfigError(
                "private Kraken channels need API credentials",
                remedy="set kraken.api_key and kraken.api_secret",
            )
        try:
            await self._c.tokens.get()
        except BrokerBridgeError as exc:
            # The supervisor logs the failure (with the remedy: the permission, `doctor`), once.
            logger.debug("kraken: Cannot get WebSocket token: %s", exc)
            raise

    async def on_connected(self) -> None:
        logger.info("kraken: Connected to private channels")
        self._reconciled = False

    async def on_signal(self, signal: Signal) -> None:
        match signal:
            case Subscribed(sub=sub):
                logger.info("kraken: Subscribed to %s channel", sub.channel.value)
                self._c.tokens.accepted(self._c.private_session.token)  # refusals in a row end
                if not self._reconciled:  # once per connection, whichever private channel is first
                    self._reconciled = True
                    self._c.request_reconcile()
            case Resyncing(sub=sub):
                # A skipped sequence number: what the gap held is read back from REST (the fresh
                # snapshot covers balances and recent fills only once Kraken accepts it again).
                self._c.request_reconcile(frozenset({sub.channel}))
            case SilenceEnded(seconds=seconds):
                # Lost frames at the end of a burst show no sequence gap: read back to be sure.
                logger.info("kraken: private stream silent for %.1f s; reconciling with REST", seconds)
                self._c.request_reconcile()
            case TokenRejected(error=error):
                self._c.renew_token(error)

    async def poll(self, subs: tuple[Subscription, ...]) -> list[AnyEvent]:
        return await self._c.poll_private(subs)

    def pollable(self, sub: Subscription) -> bool:
        return sub.channel in _POLLABLE
