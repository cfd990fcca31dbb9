"""The state of one simulated Primary: catalogue, market, session statistics, users, tokens, account.

REST handlers, WebSocket sessions and the control endpoint all work on one `PrimaryExchange`. It
owns no I/O and no tasks: the server drives `step()` on its clock and registers sessions as
listeners. The trading session opened at Buenos Aires midnight of the start day, so the backfilled
history gives the day's open/high/low/volume from the first request; `CL` (and futures' `SE`) is
the last price before that midnight. The session does not roll over at the next midnight (a run
lasting days keeps one session; documented simplification).
"""

from __future__ import annotations

import collections
import datetime as dt
import random
import string
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from brokerbridge.core.clock import Clock
from brokerbridge.sim.faults import PrimaryFaults
from brokerbridge.sim.market import Market, Stats, StepResult
from brokerbridge.sim.primary.account import Account, IdMaker, Order, OrderRequest
from brokerbridge.sim.primary.catalog import Catalog, default_catalog
from brokerbridge.sim.primary.option_market import OptionMarket, quoted_options
from brokerbridge.sim.primary.tokens import TOKEN_TTL_S, Ended, Token, TokenBook
from brokerbridge.sim.primary.usage import Usage, UsageStats
from brokerbridge.venues.primary.wire_format import local_date, local_midnight, ms

PROPRIETARY = "PBCP"  # reMarkets' (pyRofex's REMARKET default); xOMS brokers use ISV_PBCP
DEMO_CASH = {"ARS": Decimal("50000000"), "USD": Decimal("100000")}
BOOK_LEVELS = 20  # Primary serves depth 1–5 (10 seen); 20 levels keep the book realistic below that
HISTORY_S = 86_400.0
DENSE_HISTORY_S = 900.0
# History kept per instrument (386 of them trade all day, read or not). Primary serves no candles
# (only `getTrades`, by date, and the last trade in market data), and the session figures (OP, HI,
# LO, TV, TC) come from hourly candles — the session opens at Buenos Aires midnight, a whole UTC
# hour — 48 of them: two days, so figures stay exact for a run of two days (older hours drop out).
# The newest 100 trades per instrument are what `getTrades` can answer (≈ 12 MB for all of them;
# a full day of the simulated tape would be ≈ 17 M trades).
TRADES_KEPT = 100
STATS_INTERVAL = 60  # minutes
CANDLES_KEPT = 49  # 48 closed hours + the forming one
# A token with no socket counts as a live session this long after its last REST call: a client
# polling REST (a bridge's account streams: every second or so) stays live between its calls.
LIVE_WINDOW_S = 2.0


class MarketListener(Protocol):
    """A live WebSocket session as the exchange sees it."""

    def on_market(self, symbols: set[str]) -> None: ...

    def on_report(self, account: str, report: dict[str, Any]) -> None: ...


@dataclass(slots=True)
class OpenInterest:
    size: int
    date_ms: int


class PrimaryExchange:
    def __init__(
        self,
        *,
        clock: Clock,
        faults: PrimaryFaults,
        seed: int = 0,
        catalog: Catalog | None = None,
        user: str | None = None,
        password: str | None = None,
        account: str | None = None,
        token_ttl_s: float = TOKEN_TTL_S,
    ) -> None:
        self.clock = clock
        self.faults = faults
        self.seed = seed
        now = clock.time()
        self.catalog = catalog or default_catalog(local_date(now))
        self.market = Market(
            [inst.spec() for inst in self.catalog.instruments],
            seed=seed,
            now=now,
            levels=BOOK_LEVELS,
            history_s=HISTORY_S,
            dense_history_s=DENSE_HISTORY_S,
            taker_rate=0.5,
            trades_kept=TRADES_KEPT,
            candle_intervals=(STATS_INTERVAL,),
            candles_kept=CANDLES_KEPT,
            stats_interval=STATS_INTERVAL,
            quoted=[inst.symbol for inst in quoted_options(self.catalog)],
        )
        # The option books are quoted from the volatility surface around GGAL (option_market.py),
        # from the start: the first answer already shows them.
        self.options = OptionMarket(self.catalog, self.market, seed=seed)
        self.options.step(now, faults)
        # Separate generators for credentials/ids and for open interest, so that logging in or
        # trading does not change the market's path.
        self.rng = random.Random(f"primary-ids-{seed}")
        self._oi_rng = random.Random(f"primary-oi-{seed}")
        alphabet = string.ascii_letters + string.digits
        self.user = user or "bbdemo"
        self.password = password or "".join(self.rng.choice(alphabet) for _ in range(12))
        account_id = account or f"REM{self.rng.randrange(1000, 9999)}"
        self.tokens = TokenBook(self.rng, token_ttl_s)
        # What a venue sees of a client that will not take no for an answer: logins refused (wrong
        # password or `block_user`) and REST calls refused for their token (HTTP 401).
        self.refused_logins = 0
        self.refused_calls = 0
        # Logins granted: one process holding the session (`serve`, with every tool attached to
        # it) logs in once; each extra login revokes the previous token (relogin_invalidates).
        self.logins = 0
        # Sessions live at once (`live_sessions`): two means two clients held the user's session
        # together — what a cluster must never do (one holder per venue) and the venue may punish.
        self.max_live_sessions = 0
        self.usage = Usage()
        # Open sockets by the token they were opened with: a token revoked under them silences them.
        self._socket_tokens: collections.Counter[str] = collections.Counter()
        self.account = Account(
            account_id, PROPRIETARY, self.catalog, self.market, IdMaker(self.rng), DEMO_CASH
        )
        self.account.listeners.append(self._on_report)
        self.listeners: set[MarketListener] = set()
        self._reports_lost = False  # while set, reports reach no socket (the `lose_answers` fault)
        self.session_open = local_midnight(now)
        # Drawn when first asked for (each is a walk through the instrument's past: all of them
        # at start-up took half a second, for the few instruments a client reads).
        self._previous_close: dict[str, tuple[Decimal, int]] = {}
        self.open_interest = {
            inst.symbol: OpenInterest(self._oi_rng.randrange(20_000, 200_000), ms(self.session_open))
            for inst in self.catalog.instruments
            if inst.kind == "future"
        }

    # -- auth --------------------------------------------------------------------------------------------
    def login(self, user: str | None, password: str | None) -> Token | None:
        if user != self.user or password != self.password:
            return None
        self.logins += 1
        token, ended = self.tokens.issue(
            user, self.clock.monotonic(), revoke_previous=self.faults.relogin_invalidates
        )
        self._silence(ended)
        return token

    def authorised(self, token: str | None) -> Token | None:
        """The token if a request or handshake may use it now (and it is counted as in use)."""
        now = self.clock.monotonic()
        known = self.tokens.valid(token, now)
        was_live = known is not None and self._active(known, now)
        used = self.tokens.use(token, now)
        if used is not None and not was_live:  # a session live already adds nothing: no count
            self._note_live()
        return used

    def live_sessions(self) -> int:
        """Sessions live now: tokens neither revoked nor expired with an open WebSocket, or a REST
        call (or handshake) in the last `LIVE_WINDOW_S` of the simulator's clock. A client polling
        REST once a second, or holding its socket, stays live; one that went quiet does not."""
        now = self.clock.monotonic()
        return sum(1 for token in self.tokens.live(now) if self._active(token, now))

    def _active(self, token: Token, now: float) -> bool:
        if self._socket_tokens.get(token.value, 0) > 0:
            return True
        return token.last_used is not None and now - token.last_used < LIVE_WINDOW_S

    def _note_live(self) -> None:
        # Called where the count can grow (a call, a handshake, a socket opened); it only shrinks
        # with time, a revocation or a socket closing.
        self.max_live_sessions = max(self.max_live_sessions, self.live_sessions())

    def revoke(self, token: str) -> None:
        """`removeToken`."""
        self._silence(self.tokens.revoke(token, Ended.REMOVED))

    def revoke_all(self) -> None:
        """The `invalidate_tokens` fault."""
        self._silence(self.tokens.revoke_all(Ended.INVALIDATED))

    def socket_opened(self, token: str) -> None:
        self.usage.socket_opened()
        self._socket_tokens[token] += 1
        self._note_live()

    def socket_closed(self, token: str) -> None:
        self.usage.socket_closed()
        self._socket_tokens[token] -= 1
        if self._socket_tokens[token] <= 0:
            del self._socket_tokens[token]

    def _silence(self, ended: list[Token]) -> None:
        self.usage.sockets_silenced += sum(self._socket_tokens.get(t.value, 0) for t in ended)

    def usage_stats(self) -> UsageStats:
        tokens = self.tokens.counts(self.clock.monotonic())
        u = self.usage
        return UsageStats(
            logins=self.logins,
            live_sessions=self.live_sessions(),
            max_live_sessions=self.max_live_sessions,
            refused_logins=self.refused_logins,
            refused_calls=self.refused_calls,
            refused_handshakes=u.refused_handshakes,
            invalidations=tokens.revoked_by_login + tokens.removed + tokens.invalidated + tokens.expired,
            revoked_by_login=tokens.revoked_by_login,
            removed=tokens.removed,
            invalidated=tokens.invalidated,
            expired=tokens.expired,
            expired_refusals=tokens.expired_refusals,
            token_ttl_s=self.tokens.ttl_s,
            tokens_live=tokens.live,
            tokens_in_use=tokens.in_use,
            tokens_in_use_max=tokens.in_use_max,
            sockets_open=u.sockets_open,
            sockets_open_max=u.sockets_open_max,
            sockets_opened=u.sockets_opened,
            sockets_silenced=u.sockets_silenced,
            rest_calls=dict(sorted(u.rest_calls.items())),
            ws_requests=dict(sorted(u.ws_requests.items())),
            ws_error_frames=u.ws_error_frames,
        )

    def owns(self, user: str, account: str) -> bool:
        return user == self.user and account == self.account.account_id

    # -- trading -------------------------------------------------------------------------------------------
    def place(self, request: OrderRequest) -> Order:
        order, result = self.account.new_order(request, self.clock.time())
        self._publish(result)
        return order

    def place_unanswered(self, request: OrderRequest) -> Order:
        """`place`, its reports kept from every socket (REST order queries still show them): a `no`
        whose answer was lost on the way. Reports of what happens to the order later go out."""
        self._reports_lost = True
        try:
            return self.place(request)
        finally:
            self._reports_lost = False

    def cancel(self, cl_ord_id: str, proprietary: str) -> Order:
        return self.account.cancel(cl_ord_id, proprietary, self.clock.time())

    def replace(self, cl_ord_id: str, proprietary: str, qty: Decimal, price: Decimal | None) -> Order:
        order, result = self.account.replace(cl_ord_id, proprietary, qty, price, self.clock.time())
        self._publish(result)
        return order

    # -- market ------------------------------------------------------------------------------------------
    def stats(self, symbol: str) -> Stats:
        return self.market.stats(symbol, self.session_open)

    def step(self) -> StepResult:
        now = self.clock.time()
        frozen = self.options.underlying_symbols if self.faults.freeze_underlying else frozenset()
        result = self.market.step(now, frozen)
        result.merge(self.options.step(now, self.faults))
        self.account.apply_fills(result.fills, now)
        self._publish(result)
        return result

    def _publish(self, result: StepResult) -> None:
        for trade in result.trades:
            oi = self.open_interest.get(trade.symbol)
            if oi is not None:  # a trade opens, closes or transfers contracts
                change = int(trade.qty) * self._oi_rng.choice((-1, 0, 0, 1))
                oi.size = max(0, oi.size + change)
                oi.date_ms = trade.time_ns // 1_000_000
        symbols = set(result.book_changes) | {trade.symbol for trade in result.trades}
        if symbols:
            for listener in list(self.listeners):
                listener.on_market(symbols)

    def _on_report(self, account: str, report: dict[str, Any]) -> None:
        if self._reports_lost:
            return
        for listener in list(self.listeners):
            listener.on_report(account, report)

    def previous_close(self, symbol: str) -> tuple[Decimal, int]:
        """(price, date ms) of the previous session's close (the same whenever it is asked for)."""
        close = self._previous_close.get(symbol)
        if close is None:
            close = self._previous_close[symbol] = self._close_before(symbol)
        return close

    def _close_before(self, symbol: str) -> tuple[Decimal, int]:
        """(price, date ms) of the previous session's close: the last trade before `session_open`."""
        before = self.market.last_price_before(symbol, self.session_open)
        close = self.market.spec(symbol).start_price if before is None else before
        previous_day = local_date(self.session_open) - dt.timedelta(days=1)
        date = dt.datetime(previous_day.year, previous_day.month, previous_day.day, tzinfo=dt.UTC)
        return close, ms(date.timestamp())
