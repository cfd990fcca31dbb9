"""`OptionsService`: the greeks streams, options analytics kept current inside the Bridge.

A greeks stream is `Subscription(channel=GREEKS, symbol=<underlying ticker>, expiry, model)`. It is
served through the Bridge's fan-out like a venue stream (reference counted, shared by its
consumers, closed after the grace period), but its upstream is this service, not a connector.

Opening one loads the venue's catalogue (once: the connector keeps it for the day), finds the
underlying's options there (the facts — strike, expiry, call/put, lot — from the instrument
details, never from the ticker text), its spot instrument and the rate's caución, then *listens*
to their ticker streams through the same fan-out: two greeks streams of one underlying (two
expiries, two models) share one set of ticker streams, and a ticker stream a bot reads as well is
one upstream stream. Only the expiries some open greeks stream needs are listened to (`expiry`
None: all of them).

Every tick of the spot, an option or the caución schedules one recompute of that underlying on the
next loop turn (`loop.call_soon`): a burst of ticks in one turn costs one `analyze_chain` call per
model in use. The recompute is incremental: while the spot, its staleness and the rate are what the
model's last computation used, only the options that ticked since, their put-call-parity partners
(same strike and expiry: the parity rate reads both mids) and options not computed yet (an expiry
just opened) go through `analyze_chain`; a tick of the spot or the rate (or a catalogue change)
computes the whole chain. The other options keep their events (and the `ts` of their computation).
Each model keeps a `ChainMemo` for its whole-chain computations and every option's latest IVs, the
solver's starting points on the next tick (`ChainInputs.guesses`). An option's `OptionAnalytics`
is published when an input of its own changed since it was last published — its quote, its
partner's quote, the spot, the rate or the spot's staleness — so an option tick publishes that
option and its partner, an underlying or rate tick the whole chain; the passage of time alone
recomputes and republishes nothing (the next spot tick carries it). An event reaches its expiry's
topic and, when one is open, the all-expiries stream of its model (`FanOut.publish_to`).

Status of a greeks stream: CONNECTING until its first computation (catalogue loading, quotes
coming), then LIVE; STALE with the reason while the spot is not current: its stream not serving,
or no update for `[options] stale_after` seconds on the Bridge's clock (a timer recomputes then,
tick or no tick, so the events say `stale`); POLLING while the spot comes from REST polling. A
stream that cannot exist (a venue without an options catalogue, an underlying without options, an
expiry not listed) is refused through the fan-out, as a venue refuses: its consumers' iterators end
with the error. An open chain reads the catalogue again every `CATALOGUE_CHECK` and follows the
series listed (a new day's). No I/O of its own: the catalogue comes from the Bridge's connector.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import logging
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from brokerbridge.core.clock import Clock
from brokerbridge.core.config import OptionsConfig
from brokerbridge.core.errors import (
    BrokerBridgeError,
    InvalidRequest,
    UnknownChannel,
    UnknownSymbol,
    VenueError,
)
from brokerbridge.core.events import (
    AnyEvent,
    OptionAnalytics,
    StreamState,
    StreamStatus,
    Subscription,
    Ticker,
)
from brokerbridge.core.options.analytics import (
    ChainInputs,
    ChainMemo,
    OptionContract,
    Quote,
    analyze_chain,
    chain_view,
)
from brokerbridge.core.options.calendar import MarketCalendar
from brokerbridge.core.options.rates import RateInput, caucion_quote_tna, chosen_rate, dividends_of
from brokerbridge.core.options.views import MODELS, OptionChain
from brokerbridge.services.fanout import FanOut, Listening
from brokerbridge.venues.primary.catalog import Catalog
from brokerbridge.venues.primary.options import OptionFacts, RateInstrument, option_facts

logger = logging.getLogger(__name__)

# After the streams a chain needs are open, its first computation waits this long (bridge clock)
# for every one of them to answer; then it goes ahead with what came (an option with no quote has
# its figures empty, with the reason), so one silent series cannot hold a whole chain back.
FIRST_QUOTES_WAIT_S = 2.0
# A catalogue that cannot be read is asked for again after this long, doubling up to the cap.
CATALOGUE_RETRY_S = (1.0, 30.0)
# How often an open chain looks whether the venue's catalogue changed (a new day's series).
CATALOGUE_CHECK = 600.0
_SERVING = (StreamState.LIVE, StreamState.POLLING)
_DIGITS = re.compile(r"\d+")


# -- the venue's facts ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ChainFacts:
    """An underlying's `OptionFacts` (venues/primary/options.py: every fact from the instrument
    details) and each option's put-call-parity partner, whose quote its figures also read."""

    options: OptionFacts
    partners: dict[str, str]  # option symbol → the other type's symbol at its strike and expiry

    @classmethod
    def of(cls, options: OptionFacts) -> ChainFacts:
        by_key = {(c.expiry, c.strike, c.option_type): c.symbol for c in options.contracts}
        partners: dict[str, str] = {}
        for c in options.contracts:
            other = "put" if c.option_type == "call" else "call"
            partner = by_key.get((c.expiry, c.strike, other))
            if partner is not None:
                partners[c.symbol] = partner
        return cls(options, partners)

    @property
    def contracts(self) -> tuple[OptionContract, ...]:
        return self.options.contracts

    @property
    def spot_symbol(self) -> str | None:
        return self.options.underlying_symbol

    @property
    def caucion(self) -> RateInstrument | None:
        return self.options.rate

    @property
    def expiries(self) -> list[str]:
        return [d.isoformat() for d in self.options.expiries]

    def of_expiries(self, expiries: set[str] | None) -> tuple[OptionContract, ...]:
        if expiries is None:
            return self.contracts
        return tuple(c for c in self.contracts if c.expiry.isoformat() in expiries)


def chain_facts(catalog: Catalog, underlying: str) -> ChainFacts | UnknownSymbol:
    """`underlying`'s options as the catalogue lists them, or the venue's refusal."""
    try:
        return ChainFacts.of(option_facts(catalog, underlying))
    except UnknownSymbol as exc:
        return exc


# -- one underlying's live inputs ----------------------------------------------------------------
@dataclass(eq=False)
class _Underlying:
    venue: str
    ticker: str
    facts: ChainFacts | None = None  # None while the catalogue loads
    catalog: Catalog | None = None  # the catalogue `facts` were read from
    streams: dict[Subscription, StreamStatus] = field(default_factory=dict)  # greeks subs → status
    listens: dict[str, Listening] = field(default_factory=dict)  # ticker streams held, by symbol
    quotes: dict[str, Quote] = field(default_factory=dict)
    statuses: dict[str, StreamStatus] = field(default_factory=dict)  # symbol → its stream's status
    refusals: dict[str, VenueError] = field(default_factory=dict)
    answered: set[str] = field(default_factory=set)  # symbols whose stream gave a quote or a verdict
    spot_seen: float | None = None  # monotonic bridge time of the spot's latest tick
    scheduled: bool = False
    patient_until: float = 0.0  # monotonic: the first computation waits for every stream till then
    loader: asyncio.Task[None] | None = None
    spot_timer: asyncio.Task[None] | None = None
    patience: asyncio.Task[None] | None = None
    refresher: asyncio.Task[None] | None = None
    keys: dict[tuple[str, str], tuple[object, ...]] = field(default_factory=dict)  # (model, symbol)
    latest: dict[str, dict[str, OptionAnalytics]] = field(default_factory=dict)  # model → symbol →
    inputs: dict[str, ChainInputs] = field(default_factory=dict)  # model → the last computation's
    computed: set[Subscription] = field(default_factory=set)  # greeks streams computed at least once
    # Incremental recompute: the symbols whose quote came since the last computation, and what
    # every option of a model was last computed with (spot, its staleness, rate): while that holds,
    # only the options that ticked (and their parity partners) are computed again.
    dirty: set[str] = field(default_factory=set)
    shared: dict[str, tuple[object, ...]] = field(default_factory=dict)  # model → (spot, stale, rate)
    memos: dict[str, ChainMemo] = field(default_factory=dict)  # model → the whole chain's memo
    # model → symbol → its latest IVs (bid, ask, last, mid): the solver's starting points next time
    guesses: dict[str, dict[str, tuple[float, float, float, float]]] = field(default_factory=dict)
    options_computed: int = 0  # options through analyze_chain since the chain opened (tests, stats)

    def models(self) -> set[str]:
        return {sub.model or "" for sub in self.streams}

    def expiries(self, model: str) -> set[str] | None:
        """The expiries the open streams of `model` need (None: every one)."""
        wanted: set[str] = set()
        for sub in self.streams:
            if sub.model == model:
                if sub.expiry is None:
                    return None
                wanted.add(sub.expiry)
        return wanted


class OptionsService:
    """The greeks streams of a Bridge (see the module docstring)."""

    def __init__(
        self,
        *,
        fanout: FanOut,
        clock: Clock,
        config: OptionsConfig,
        calendar: MarketCalendar,
        catalog: Callable[[str], Awaitable[Catalog | None]],
        ticker_subscription: Callable[[str, str], Subscription],
    ) -> None:
        """`catalog(venue)`: the venue's catalogue (None: it keeps none); `ticker_subscription(venue,
        symbol)`: the checked ticker `Subscription` (raises the venue's error if it cannot be had)."""
        self._fanout = fanout
        self._clock = clock
        self._config = config
        self.calendar = calendar
        self._catalog = catalog
        self._ticker_subscription = ticker_subscription
        self._expiry_time = dt.time.fromisoformat(config.expiry_time)
        self._underlyings: dict[tuple[str, str], _Underlying] = {}
        self._catalogs: dict[str, Catalog | None] = {}  # venue → its catalogue, once loaded
        self._facts_read: dict[tuple[str, str], tuple[Catalog, ChainFacts | UnknownSymbol]] = {}
        self._tasks: asyncio.TaskGroup | None = None

    # -- lifetime ------------------------------------------------------------------------------
    def start(self, tasks: asyncio.TaskGroup) -> None:
        """The Bridge runs: catalogue loads and timers go into `tasks` (those asked for before
        start, e.g. a greeks stream held from the beginning, start now)."""
        self._tasks = tasks
        for u in self._underlyings.values():
            if u.facts is None and u.loader is None:
                u.loader = tasks.create_task(self._load(u), name=f"options-{u.venue}-{u.ticker}")

    def stop(self) -> None:
        self._tasks = None
        for u in self._underlyings.values():
            u.loader = u.spot_timer = u.patience = u.refresher = None

    # -- checks --------------------------------------------------------------------------------
    def check(self, sub: Subscription) -> None:
        """Raise the error a greeks stream would end with, where what decides it is known now: the
        model and expiry's form always, the rest once the venue's catalogue is loaded (until then
        the stream is accepted and refused on opening, as a venue refuses a symbol)."""
        if sub.model not in MODELS:
            raise InvalidRequest(
                f"unknown options model {sub.model!r}",
                venue=sub.venue,
                remedy=f"models: {', '.join(MODELS)} (american: Bjerksund–Stensland 2002; "
                "european: Black–Scholes–Merton)",
            )
        if not sub.symbol:
            raise InvalidRequest(
                f"{sub.describe()} needs an underlying's ticker",
                venue=sub.venue,
                remedy="e.g. bridge.subscribe('primary', 'greeks', 'GGAL')",
            )
        if sub.expiry is not None:
            try:
                valid = dt.date.fromisoformat(sub.expiry).isoformat() == sub.expiry
            except ValueError:
                valid = False
            if not valid:
                raise InvalidRequest(
                    f"expiry {sub.expiry!r} is not an ISO date",
                    venue=sub.venue,
                    remedy="give the expiry as YYYY-MM-DD (e.g. 2026-12-18), or none for every expiry",
                )
        if sub.venue in self._catalogs:
            error = self._refusal(sub, self._catalogs[sub.venue])
            if error is not None:
                raise error

    def learn_catalog(self, venue: str, catalog: Catalog | None) -> None:
        """The venue's catalogue as the Bridge just read it: greeks streams are checked against it
        from now on (`check`), before they open."""
        self._catalogs[venue] = catalog

    def _refusal(self, sub: Subscription, catalog: Catalog | None) -> VenueError | None:
        """Why `sub` cannot be served by a venue with `catalog` (None: it can)."""
        if catalog is None:
            have = [venue for venue, known in self._catalogs.items() if known is not None]
            return UnknownChannel(
                f"{sub.venue} has no options catalogue: greeks are computed from a venue's listed options",
                venue=sub.venue,
                remedy=f"ask greeks of a venue that lists options ({', '.join(have) or 'primary'})",
            )
        facts = self._facts(sub.venue, sub.symbol or "", catalog)
        if isinstance(facts, UnknownSymbol):
            return facts
        if facts.options.underlying != sub.symbol:  # e.g. the stock's symbol: events name the ticker
            return InvalidRequest(
                f"greeks are asked by the underlying's ticker, not {sub.symbol!r}",
                venue=sub.venue,
                remedy=f"use {facts.options.underlying!r}",
            )
        if sub.expiry is not None and sub.expiry not in facts.expiries:
            return InvalidRequest(
                f"{sub.venue} lists no {sub.symbol} options expiring {sub.expiry}",
                venue=sub.venue,
                remedy=f"listed expiries: {', '.join(facts.expiries)} (or none for every expiry)",
            )
        return None

    def _facts(self, venue: str, ticker: str, catalog: Catalog) -> ChainFacts | UnknownSymbol:
        """`chain_facts`, read once per catalogue (a check must not scan thousands of details)."""
        known = self._facts_read.get((venue, ticker))
        if known is not None and known[0] is catalog:
            return known[1]
        facts = chain_facts(catalog, ticker)
        self._facts_read[(venue, ticker)] = (catalog, facts)
        return facts

    # -- the fan-out's upstream ----------------------------------------------------------------
    def open(self, sub: Subscription) -> None:
        key = (sub.venue, sub.symbol or "")
        u = self._underlyings.get(key)
        if u is None:
            u = self._underlyings[key] = _Underlying(sub.venue, sub.symbol or "")
        # Its first consumer learns at once that it is opening (as a venue stream's does).
        if u.facts is None:
            self._set_status(u, sub, StreamState.CONNECTING, "loading the venue's options catalogue")
            if u.loader is None and self._tasks is not None:
                u.loader = self._tasks.create_task(self._load(u), name=f"options-{u.venue}-{u.ticker}")
            return
        self._set_status(u, sub, StreamState.CONNECTING, "waiting for the first quotes")
        self._admit(u, sub)

    def close(self, sub: Subscription) -> None:
        u = self._underlyings.get((sub.venue, sub.symbol or ""))
        if u is None or sub not in u.streams:
            return
        del u.streams[sub]
        u.computed.discard(sub)
        if u.streams:
            self._listen_to_needed(u)
            for model in set(u.latest) - u.models():
                del u.latest[model]
                u.inputs.pop(model, None)
                u.shared.pop(model, None)
                u.memos.pop(model, None)
                u.guesses.pop(model, None)
                u.keys = {k: v for k, v in u.keys.items() if k[0] != model}
            return
        # The last greeks stream of the underlying: let every ticker stream go, forget its inputs.
        del self._underlyings[(u.venue, u.ticker)]
        for task in (u.loader, u.spot_timer, u.patience, u.refresher):
            if task is not None:
                task.cancel()
        for listening in u.listens.values():
            listening.close()
        u.listens.clear()

    def status_of(self, sub: Subscription) -> StreamStatus:
        u = self._underlyings.get((sub.venue, sub.symbol or ""))
        status = None if u is None else u.streams.get(sub)
        return status or self._status(sub, StreamState.IDLE, "not open")

    def current_state(self, sub: Subscription) -> list[AnyEvent]:
        """The stream's status, then the latest analytics of every option it covers (a late
        joiner gets the whole chain at once)."""
        out: list[AnyEvent] = [self.status_of(sub)]
        u = self._underlyings.get((sub.venue, sub.symbol or ""))
        if u is not None:
            out.extend(self._latest_of(u, sub))
        return out

    def computed(self, sub: Subscription) -> bool:
        """Whether `sub`'s chain has been computed at least once since it opened."""
        u = self._underlyings.get((sub.venue, sub.symbol or ""))
        return u is not None and sub in u.computed

    def chain(self, sub: Subscription, *, simulated: bool) -> OptionChain:
        """`sub`'s chain as the API answers it (after `computed(sub)`)."""
        u = self._underlyings[(sub.venue, sub.symbol or "")]
        inputs = u.inputs[sub.model or ""]
        return chain_view(inputs, self._latest_of(u, sub), simulated=simulated)

    def _latest_of(self, u: _Underlying, sub: Subscription) -> list[OptionAnalytics]:
        latest = u.latest.get(sub.model or "", {})
        if u.facts is None:
            return []
        return [
            latest[c.symbol]
            for c in u.facts.contracts
            if c.symbol in latest and (sub.expiry is None or c.expiry.isoformat() == sub.expiry)
        ]

    # -- opening -------------------------------------------------------------------------------
    async def _load(self, u: _Underlying) -> None:
        """Load the venue's catalogue (retrying while it cannot be read), then admit every stream
        opened meanwhile."""
        delay, cap = CATALOGUE_RETRY_S
        while True:
            try:
                catalog = await self._catalog(u.venue)
                break
            except Exception as exc:  # the venue's, or a bug: the streams wait and say why
                text = exc.message if isinstance(exc, BrokerBridgeError) else repr(exc)
                for sub in u.streams:
                    reason = f"the venue's catalogue cannot be read: {text}"
                    self._set_status(u, sub, StreamState.STALE, reason)
                logger.warning("%s: options catalogue not loaded (again in %g s): %s", u.venue, delay, text)
                await self._clock.sleep(delay)
                delay = min(delay * 2, cap)
        u.loader = None
        self._catalogs[u.venue] = catalog
        if self._underlyings.get((u.venue, u.ticker)) is not u:
            return  # closed meanwhile
        if catalog is not None:
            facts = self._facts(u.venue, u.ticker, catalog)
            u.facts = facts if isinstance(facts, ChainFacts) else None
            u.catalog = catalog
            if u.facts is not None and self._tasks is not None:
                u.refresher = self._tasks.create_task(
                    self._follow_catalogue(u), name=f"options-catalogue-{u.venue}-{u.ticker}"
                )
        for sub in list(u.streams):
            self._admit(u, sub)

    async def _follow_catalogue(self, u: _Underlying) -> None:
        """Read the venue's catalogue again every `CATALOGUE_CHECK` (the connector fetches a new one
        each Buenos Aires day): a stream open across days follows the series listed — an expired
        series leaves the chain, a new one joins, a stream of an expiry no longer listed ends with
        that refusal."""
        while True:
            await self._clock.sleep(CATALOGUE_CHECK)
            try:
                catalog = await self._catalog(u.venue)
            except Exception as exc:  # kept: the series listed when it was last read
                logger.warning("%s: options catalogue not read again: %r", u.venue, exc)
                continue
            if catalog is None or catalog is u.catalog:
                continue
            self._catalogs[u.venue] = catalog
            facts = self._facts(u.venue, u.ticker, catalog)
            if not isinstance(facts, ChainFacts):  # no option of it listed any more
                for sub in list(u.streams):
                    self._admit(u, sub)  # refused with the venue's words
                continue
            u.catalog = catalog
            if u.facts is not None and facts.contracts == u.facts.contracts:
                u.facts = facts
                continue
            u.facts = facts
            u.shared.clear()  # new series, new parity pairs: the whole chain again
            listed = {c.symbol for c in facts.contracts}
            for latest in u.latest.values():
                for symbol in set(latest) - listed:
                    del latest[symbol]
            u.keys = {k: v for k, v in u.keys.items() if k[1] in listed}
            for sub in list(u.streams):
                self._admit(u, sub)

    def _admit(self, u: _Underlying, sub: Subscription) -> None:
        """Serve `sub` from `u` (the catalogue is loaded), or refuse it."""
        error = self._refusal(sub, self._catalogs.get(sub.venue))
        if error is not None:
            self._set_status(u, sub, StreamState.STALE, f"refused: {error.message}")
            # On the next turn, as a venue's refusal comes: `open` runs inside the fan-out's
            # subscribe/listen, whose caller has no handle yet to close.
            asyncio.get_running_loop().call_soon(self._fanout.refused, sub, error)
            return
        self._listen_to_needed(u)
        if sub not in u.computed:
            self._set_status(u, sub, StreamState.CONNECTING, "waiting for the first quotes")
        self._schedule(u)

    def _listen_to_needed(self, u: _Underlying) -> None:
        """Listen to the ticker streams the open greeks streams need; let go of the others."""
        facts = u.facts
        if facts is None:
            return
        wanted: set[str] = set()
        for sub in u.streams:
            if sub.model in MODELS and self._refusal(sub, self._catalogs.get(sub.venue)) is None:
                wanted.update(c.symbol for c in facts.of_expiries(u.expiries(sub.model or "")))
        if wanted:
            wanted.update(s for s in (facts.spot_symbol, self._caucion(facts)) if s is not None)
        dropped = set(u.listens) - wanted
        for symbol in dropped:
            u.listens.pop(symbol).close()
            u.quotes.pop(symbol, None)
            u.statuses.pop(symbol, None)
            u.answered.discard(symbol)
            # No stream shows it now: if one asks for it again it is computed afresh, not served
            # from an event of the quotes it had then.
            for latest in u.latest.values():
                latest.pop(symbol, None)
        if dropped:
            u.keys = {k: v for k, v in u.keys.items() if k[1] not in dropped}
        opened = False
        # A symbol its venue refused stays refused while the chain is open (its figures say so).
        for symbol in sorted(wanted - set(u.listens) - set(u.refusals)):
            opened = True
            try:
                ticker = self._ticker_subscription(u.venue, symbol)
            except VenueError as exc:  # e.g. no longer listed: the figures say why
                self._refused(u, symbol, exc)
                continue
            except BrokerBridgeError as exc:  # e.g. no credentials: nothing of the chain can come
                self._refused(u, symbol, VenueError(exc.message, venue=u.venue, remedy=exc.remedy))
                continue
            u.listens[symbol] = self._fanout.listen(
                ticker,
                functools.partial(self._on_ticker_event, u, symbol),
                functools.partial(self._refused, u, symbol),
            )
        if opened:
            u.patient_until = self._clock.monotonic() + FIRST_QUOTES_WAIT_S
            if u.patience is None and self._tasks is not None:
                u.patience = self._tasks.create_task(
                    self._wait_patiently(u), name=f"options-first-{u.ticker}"
                )

    async def _wait_patiently(self, u: _Underlying) -> None:
        """Compute once the wait for the first quotes is over, whatever has come."""
        try:
            while (due := u.patient_until - self._clock.monotonic()) > 0:
                await self._clock.sleep(due)
        finally:
            u.patience = None
        self._schedule(u)

    # -- inputs --------------------------------------------------------------------------------
    def _on_ticker_event(self, u: _Underlying, symbol: str, event: AnyEvent) -> None:
        """A held ticker stream's event (inside the venue's event path: only notes and schedules)."""
        if isinstance(event, Ticker):
            u.quotes[symbol] = Quote(bid=event.bid, ask=event.ask, last=event.last, ts=event.ts)
            u.answered.add(symbol)
            u.dirty.add(symbol)
            if u.facts is not None and symbol == u.facts.spot_symbol:
                u.spot_seen = self._clock.monotonic()
                if u.spot_timer is None and self._tasks is not None:
                    u.spot_timer = self._tasks.create_task(
                        self._watch_spot(u), name=f"options-spot-{u.ticker}"
                    )
        elif isinstance(event, StreamStatus):
            u.statuses[symbol] = event
            if event.state is StreamState.STALE:
                u.answered.add(symbol)
        else:
            return
        self._schedule(u)

    def _refused(self, u: _Underlying, symbol: str, error: VenueError) -> None:
        u.refusals[symbol] = error
        u.answered.add(symbol)
        listening = u.listens.pop(symbol, None)
        if listening is not None:
            # Closed after the fan-out has told every consumer (this runs inside its loop).
            asyncio.get_running_loop().call_soon(listening.close)
        self._schedule(u)

    async def _watch_spot(self, u: _Underlying) -> None:
        """Recompute when the spot turns stale by age, tick or no tick."""
        try:
            while u.spot_seen is not None:
                due = u.spot_seen + self._config.stale_after - self._clock.monotonic()
                if due <= 0:
                    break
                await self._clock.sleep(due)
        finally:
            u.spot_timer = None
        self._schedule(u)

    def _spot_stale(self, u: _Underlying) -> str | None:
        """Why the spot is not current (None: it is)."""
        facts = u.facts
        if facts is None or facts.spot_symbol is None:
            return f"the catalogue lists no {u.ticker} stock to take the spot from"
        symbol = facts.spot_symbol
        if (refused := u.refusals.get(symbol)) is not None:
            return f"the underlying's stream {symbol} is refused: {refused.message}"
        status = u.statuses.get(symbol)
        if status is not None and status.state not in _SERVING:
            return f"the underlying's stream {symbol} is {status.state.value}: {status.reason}"
        if u.spot_seen is None or symbol not in u.quotes:
            return f"no price of {symbol} yet"
        age = self._clock.monotonic() - u.spot_seen
        if age >= self._config.stale_after:  # the timer wakes at exactly that age
            return f"no update of {symbol} for {age:.0f} s (stale after {self._config.stale_after:g} s)"
        return None

    def _caucion(self, facts: ChainFacts) -> str | None:
        """The caución to listen to: none when the rate is the configured one."""
        caucion = facts.caucion
        return caucion.symbol if caucion is not None and self._config.rate_source == "caucion" else None

    def _rate(self, u: _Underlying) -> RateInput:
        """The rate the models use: the peso caución's quote (`rate_source = "caucion"`) while it
        has one, else the configured `rate_tna`."""
        caucion = u.facts.caucion if u.facts is not None else None
        quote = u.quotes.get(caucion.symbol) if caucion is not None else None
        return chosen_rate(
            rate_source=self._config.rate_source,
            rate_tna=self._config.rate_tna,
            caucion_symbol=caucion.symbol if caucion is not None else None,
            caucion_days=caucion.days if caucion is not None else None,
            tna=caucion_quote_tna(quote.bid, quote.ask, quote.last) if quote is not None else None,
        )

    # -- computing -----------------------------------------------------------------------------
    def _schedule(self, u: _Underlying) -> None:
        """One recompute on the next loop turn, however many ticks come in this one."""
        if not u.scheduled:
            u.scheduled = True
            asyncio.get_running_loop().call_soon(self._recompute, u)

    def _ready(self, u: _Underlying, sub: Subscription) -> bool:
        """Whether `sub` may be computed: once it was, always; the first time, when every stream it
        needs answered (a quote, or a verdict), or when the wait for them is over and the spot
        answered (an option with no quote then says so in its figures)."""
        facts = u.facts
        if sub in u.computed:
            return True
        if facts is None:
            return False
        needed = {c.symbol for c in facts.of_expiries(None if sub.expiry is None else {sub.expiry})}
        needed.update(s for s in (facts.spot_symbol, self._caucion(facts)) if s is not None)
        if needed <= u.answered:
            return True
        spot = facts.spot_symbol
        if self._clock.monotonic() < u.patient_until:
            return False
        # A stream that serves but sent nothing: a quiet product Primary already streams on this
        # connection gives no snapshot to a new subscriber; computed without it, the figures say so.
        status = u.statuses.get(spot) if spot is not None else None
        return spot is None or spot in u.answered or (status is not None and status.state in _SERVING)

    def _recompute(self, u: _Underlying) -> None:
        u.scheduled = False
        facts = u.facts
        if self._underlyings.get((u.venue, u.ticker)) is not u or facts is None:
            return
        served = [sub for sub in u.streams if self._refusal(sub, self._catalogs.get(sub.venue)) is None]
        ready = [sub for sub in served if self._ready(u, sub)]
        if not ready:
            return
        spot_stale = self._spot_stale(u)
        rate = self._rate(u)
        spot_symbol = facts.spot_symbol
        spot = u.quotes.get(spot_symbol) if spot_symbol is not None else None
        now = self._clock.time()
        shared = (spot, _shape(spot_stale), rate)
        dirty, u.dirty = u.dirty, set()
        for model in sorted({sub.model or "" for sub in ready}):
            contracts = facts.of_expiries(u.expiries(model))
            memo = u.memos.get(model)
            if memo is None:
                memo = u.memos[model] = ChainMemo()
            guesses = u.guesses.setdefault(model, {})
            inputs = ChainInputs(
                venue=u.venue,
                underlying=u.ticker,
                underlying_symbol=spot_symbol,
                contracts=contracts,
                quotes=dict(u.quotes),
                spot=spot,
                spot_stale=spot_stale,
                rate=rate,
                model=model,
                now=now,
                calendar=self.calendar,
                time_basis=self._config.time_basis,
                expiry_time=self._expiry_time,
                dividends=dividends_of(self._config.dividends, u.ticker),
                memo=memo,
                guesses=guesses,
            )
            of_model = [sub for sub in ready if sub.model == model]
            computing = inputs
            if u.shared.get(model) == shared:
                # The spot, its staleness and the rate as at the last computation: only the options
                # that ticked, their parity partners (the parity rate reads both mids) and any not
                # computed yet (an expiry just opened) are computed again.
                latest = u.latest.get(model, {})
                again = {facts.partners.get(symbol) for symbol in dirty} | dirty
                subset = tuple(c for c in contracts if c.symbol in again or c.symbol not in latest)
                # The whole chain's memo is kept for the next whole-chain tick: a subset has its own.
                computing = dataclasses.replace(inputs, contracts=subset, memo=None)
            try:
                events = analyze_chain(computing) if computing.contracts else []
            except Exception as exc:  # our bug: the streams say so rather than go quiet
                logger.exception("%s: options analytics of %s failed", u.venue, u.ticker)
                u.shared.pop(model, None)  # the whole chain again next time
                for sub in of_model:
                    reason = f"options analytics failed (our bug): {exc!r}"
                    self._set_status(u, sub, StreamState.STALE, reason)
                continue
            u.options_computed += len(events)
            u.shared[model] = shared
            u.inputs[model] = inputs
            newly = [sub for sub in of_model if sub not in u.computed]
            u.computed.update(newly)
            # Status first: a consumer reads the chain's events knowing whether they are current.
            for sub in of_model:
                self._set_status(u, sub, *self._state(u, spot_stale))
            sent = self._publish_changed(u, model, events, shared)
            for sub in newly:
                # Opened on a chain computed before: its options whose inputs did not change were
                # not sent above; it gets them all now.
                for event in self._latest_of(u, sub):
                    if event.symbol not in sent:
                        self._fanout.publish_to(sub, event)

    def _state(self, u: _Underlying, spot_stale: str | None) -> tuple[StreamState, str]:
        if spot_stale is not None:
            return StreamState.STALE, f"greeks from a stale underlying price: {spot_stale}"
        spot = u.facts.spot_symbol if u.facts is not None else None
        status = u.statuses.get(spot) if spot is not None else None
        if status is not None and status.state is StreamState.POLLING:
            return StreamState.POLLING, "the underlying's prices come from REST polling"
        return StreamState.LIVE, "computed on every tick of the options, the underlying and the rate"

    def _publish_changed(
        self, u: _Underlying, model: str, events: list[OptionAnalytics], shared: tuple[object, ...]
    ) -> set[str]:
        """Publish each event whose inputs changed since its option's last publication (`shared`:
        the spot, its staleness and the rate); return their symbols."""
        facts = u.facts
        assert facts is not None
        latest = u.latest.setdefault(model, {})
        guesses = u.guesses.setdefault(model, {})
        gatherers = [sub for sub in u.streams if sub.model == model and sub.expiry is None]
        sent: set[str] = set()
        for event in events:
            partner = facts.partners.get(event.symbol)
            key = (u.quotes.get(event.symbol), u.quotes.get(partner) if partner else None, *shared)
            latest[event.symbol] = event
            guesses[event.symbol] = _ivs(event)
            if u.keys.get((model, event.symbol)) == key:
                continue
            u.keys[(model, event.symbol)] = key
            sent.add(event.symbol)
            self._fanout.publish(event)  # its expiry's topic
            for sub in gatherers:
                self._fanout.publish_to(sub, event)
        return sent

    # -- statuses ------------------------------------------------------------------------------
    def _status(self, sub: Subscription, state: StreamState, reason: str) -> StreamStatus:
        return StreamStatus(
            venue=sub.venue, ts=self._clock.time(), stream=sub.describe(), state=state, reason=reason
        )

    def _set_status(self, u: _Underlying, sub: Subscription, state: StreamState, reason: str) -> None:
        """Publish `sub`'s status if it changed."""
        before = u.streams.get(sub)
        if before is not None and before.state is state and _shape(before.reason) == _shape(reason):
            return  # the same news (a stale spot's age grows: not a change worth an event)
        status = u.streams[sub] = self._status(sub, state, reason)
        self._fanout.publish(status)


def _ivs(event: OptionAnalytics) -> tuple[float, float, float, float]:
    """The event's four IVs as the solver's next guesses: NaN for none (a float array reads them
    straight, where a None costs analyze_chain a slower conversion)."""
    nan = math.nan
    bid, ask, last, mid = event.iv_bid, event.iv_ask, event.iv_last, event.iv_mid
    return (
        nan if bid is None else bid,
        nan if ask is None else ask,
        nan if last is None else last,
        nan if mid is None else mid,
    )


def _shape(reason: str | None) -> str | None:
    """`reason` without its numbers: a stale spot's reason says its age, which grows on every
    recompute; that alone is no news to publish."""
    return None if reason is None else _DIGITS.sub("#", reason)
