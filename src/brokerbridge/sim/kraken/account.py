"""The simulated Kraken account side: API keys (permissions, nonces, call counter), WebSocket tokens,
balances, orders, own trades and the ledger.

All keys created by one simulator trade on the same demo account (one wallet, one order list); each
key has its own permissions, nonce and REST call counter, as on Kraken. Everything time-dependent
takes `now` (monotonic seconds for ages/decay, wall nanoseconds for stamps) from the caller, which
reads the simulator's injected clock.

Account changes are published synchronously to `listeners` as `AccountEvent`s in the order they
happen (pending_new → new → trade… → filled/canceled, ledger entries per trade), so the WebSocket
layer formats each one against the order's state at that moment.
"""

from __future__ import annotations

import base64
import enum
import random
import string
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

from brokerbridge.sim.kraken.catalog import Catalog, KrakenAsset, KrakenPair
from brokerbridge.sim.kraken.order_rate import RATE_LIMIT_EXCEEDED, OrderRateCounter
from brokerbridge.sim.kraken.ws_wire import Reject
from brokerbridge.sim.market import Fill, Market, Side, StepResult

REST_COUNTER_MAX = 20.0  # "Intermediate" tier
REST_COUNTER_DECAY = 0.5  # per second
TOKEN_TTL_S = 900.0
# The account's history is bounded. Kraken keeps all of it (ClosedOrders and TradesHistory page 50 at a
# time, newest first, `count` the grand total); the simulator keeps the newest 10,000 closed or
# canceled orders, 10,000 own trades and their ledger entries (two a trade) — 200 pages, more than
# any test or bot on it reads, ≈ 15 MB at most — and `count` is what it holds. Open orders are kept.
CLOSED_ORDERS_KEPT = 10_000
OWN_TRADES_KEPT = 10_000


class ApiError(Exception):
    """A Kraken error string (`EOrder:Insufficient funds`), answered in the venue's envelope."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class RateLimitExceeded(ApiError, Reject):
    """`EOrder:Rate limit exceeded`, raised from the account where both wires pass (`place`,
    `cancel`) and so answered in either's envelope: REST handlers catch `ApiError`, the WebSocket
    protocol `Reject` (its cancel path lets account errors through to that)."""

    def __init__(self) -> None:
        super().__init__(RATE_LIMIT_EXCEEDED)  # ApiError's, then Reject's: `code`, `error`, `extra`


class Permission(enum.StrEnum):
    """API-key permissions (Kraken's older labels in comments)."""

    QUERY_FUNDS = "query_funds"  # Query Funds
    QUERY_OPEN = "query_open_orders"  # Query Open Orders & Trades
    QUERY_CLOSED = "query_closed_orders"  # Query Closed Orders & Trades
    CREATE_ORDERS = "create_orders"  # Create & Modify Orders
    CANCEL_ORDERS = "cancel_orders"  # Cancel/Close Orders
    WEBSOCKETS = "websockets"  # Access WebSockets API


ALL_PERMISSIONS = frozenset(Permission)


class IdMaker:
    """Kraken-looking ids from a seeded generator: `OK4GJX-KSTLS-7DZZO5`."""

    _ALPHABET = string.ascii_uppercase + string.digits

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def kraken_id(self, prefix: str = "") -> str:
        def part(n: int) -> str:
            return "".join(self._rng.choice(self._ALPHABET) for _ in range(n))

        first = prefix + part(6 - len(prefix))
        return f"{first}-{part(5)}-{part(6)}"

    def b64(self, nbytes: int) -> str:
        return base64.b64encode(self._rng.randbytes(nbytes)).decode()


@dataclass(slots=True)
class ApiKey:
    key: str
    secret: str
    permissions: frozenset[Permission]
    nonce_window: int = 0
    demo: bool = False
    last_nonce: int = 0
    _recent: set[int] = field(default_factory=set)
    counter: float = 0.0
    counter_at: float | None = None

    def accept_nonce(self, nonce: int) -> bool:
        """Strictly increasing per key; with a window, late nonces within it are accepted once."""
        if nonce > self.last_nonce:
            self.last_nonce = nonce
            self._recent.add(nonce)
        elif self.nonce_window and nonce > self.last_nonce - self.nonce_window and nonce not in self._recent:
            self._recent.add(nonce)
        else:
            return False
        if len(self._recent) > 1000:
            floor = self.last_nonce - self.nonce_window
            self._recent = {n for n in self._recent if n > floor}
        return True

    def charge(self, cost: float, now: float) -> bool:
        """The REST call counter: +cost per call, decays 0.5/s, refuses above 20 (call not counted)."""
        if self.counter_at is not None:
            self.counter = max(0.0, self.counter - (now - self.counter_at) * REST_COUNTER_DECAY)
        self.counter_at = now
        if self.counter + cost > REST_COUNTER_MAX:
            return False
        self.counter += cost
        return True


@dataclass(slots=True)
class Token:
    value: str
    key: str
    issued_at: float  # monotonic
    revoked: bool = False

    def fresh(self, now: float) -> bool:
        return not self.revoked and now - self.issued_at < TOKEN_TTL_S


class TokenBook:
    def __init__(self, ids: IdMaker) -> None:
        self._ids = ids
        self._tokens: dict[str, Token] = {}

    def issue(self, key: str, now: float) -> Token:
        # 32 random bytes → 44 base64 chars with one "=": Kraken's tokens are the 43 without padding.
        token = Token(self._ids.b64(32).rstrip("="), key, now)
        self._tokens[token.value] = token
        return token

    def get(self, value: str) -> Token | None:
        return self._tokens.get(value)

    def revoke_all(self) -> None:
        for token in self._tokens.values():
            token.revoked = True


@dataclass(slots=True)
class Order:
    txid: str
    pair: KrakenPair
    side: Side
    ordertype: str  # "limit" | "market"
    volume: Decimal
    price: Decimal | None
    userref: int
    cl_ord_id: str | None
    opentm_ns: int
    timeinforce: str = "GTC"
    oflags: str = "fciq"
    post_only: bool = False
    status: str = "pending"  # REST: pending | open | closed | canceled
    vol_exec: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    trades: list[str] = field(default_factory=list)
    closetm_ns: int | None = None
    reason: str | None = None
    hold: Decimal = Decimal(0)  # still held for this order (quote for buys, base for sells)

    @property
    def remaining(self) -> Decimal:
        return self.volume - self.vol_exec

    @property
    def avg_price(self) -> Decimal:
        return self.cost / self.vol_exec if self.vol_exec else Decimal(0)

    @property
    def hold_asset(self) -> KrakenAsset:
        return self.pair.quote if self.side is Side.BUY else self.pair.base

    @property
    def ws_status(self) -> str:
        if self.status == "pending":
            return "pending_new"
        if self.status == "open":
            return "partially_filled" if self.vol_exec else "new"
        if self.status == "closed":
            return "filled"
        return "canceled"


@dataclass(slots=True)
class OwnTrade:
    txid: str
    order: Order
    postxid: str
    time_ns: int
    price: Decimal
    vol: Decimal
    cost: Decimal
    fee: Decimal
    maker: bool
    trade_id: int
    ledgers: tuple[str, str] = ("", "")
    # Order totals right after this fill (executions trade events report them).
    cum_qty: Decimal = Decimal(0)
    cum_cost: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    ledger_id: str
    ref_id: str
    time_ns: int
    asset: KrakenAsset
    amount: Decimal
    fee: Decimal
    balance: Decimal
    type: str = "trade"


@dataclass(frozen=True, slots=True)
class AccountEvent:
    """kind: pending_new | new | amended | trade | filled | canceled | ledger."""

    kind: str
    order: Order | None = None
    trade: OwnTrade | None = None
    ledger: LedgerEntry | None = None
    time_ns: int = 0


@dataclass(frozen=True, slots=True)
class OrderRequest:
    pair: KrakenPair
    side: Side
    ordertype: str
    volume: Decimal
    price: Decimal | None
    userref: int = 0
    cl_ord_id: str | None = None
    timeinforce: str = "GTC"
    post_only: bool = False
    fee_in_base: bool = False


def _q(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


class Account:
    def __init__(
        self,
        catalog: Catalog,
        market: Market,
        ids: IdMaker,
        balances: dict[str, Decimal],
        *,
        closed_kept: int = CLOSED_ORDERS_KEPT,
        trades_kept: int = OWN_TRADES_KEPT,
    ) -> None:
        self.catalog = catalog
        self.market = market
        self.ids = ids
        self.balances: dict[str, Decimal] = {}
        for asset_id, amount in balances.items():
            asset = catalog.asset(asset_id)
            if asset is None:
                raise ValueError(f"unknown asset {asset_id}")
            self.balances[asset.asset_id] = _q(amount, asset.decimals)
        self.orders: dict[str, Order] = {}
        self.trades: dict[str, OwnTrade] = {}
        self.ledger: deque[LedgerEntry] = deque(maxlen=2 * trades_kept)
        self._closed: deque[str] = deque()  # txids of closed and canceled orders, oldest first
        self._closed_kept = closed_kept
        self._trades_kept = trades_kept
        self.listeners: list[Callable[[AccountEvent], None]] = []
        # Kraken's per-pair trading rate counter, which every add and cancel — REST or WebSocket —
        # passes through here (`place`, `cancel`).
        self.order_rate = OrderRateCounter()

    # -- reading ---------------------------------------------------------------------------------------
    def held(self, asset_id: str) -> Decimal:
        return sum(
            (
                o.hold
                for o in self.orders.values()
                if o.status == "open" and o.hold_asset.asset_id == asset_id
            ),
            Decimal(0),
        )

    def available(self, asset_id: str) -> Decimal:
        return self.balances.get(asset_id, Decimal(0)) - self.held(asset_id)

    def open_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if o.status in ("pending", "open")]

    def closed_orders(self) -> list[Order]:
        """Newest first (by close time)."""
        closed = [o for o in self.orders.values() if o.status in ("closed", "canceled")]
        return sorted(closed, key=lambda o: o.closetm_ns or 0, reverse=True)

    def find(self, ref: str | int) -> list[Order]:
        """Open orders by txid, userref (int) or cl_ord_id."""
        if isinstance(ref, int):
            return [o for o in self.open_orders() if o.userref == ref]
        return [o for o in self.open_orders() if ref in (o.txid, o.cl_ord_id)]

    # -- orders ------------------------------------------------------------------------------------------
    def check(self, req: OrderRequest) -> None:
        """Validate an order against pair rules and funds; raises ApiError with Kraken's string."""
        pair = req.pair
        if req.volume < Decimal(pair.ordermin):
            raise ApiError("EOrder:Order minimum not met")
        if req.price is not None:
            if req.price <= 0:
                raise ApiError("EOrder:Invalid price")
            if -req.price.normalize().as_tuple().exponent > pair.pair_decimals:  # type: ignore[operator]
                raise ApiError(
                    f"EOrder:Invalid price:{pair.altname} price can only be specified up to "
                    f"{pair.pair_decimals} decimals."
                )
            if req.price % Decimal(pair.tick_size):
                raise ApiError("EOrder:Tick size check failed")
            if req.price * req.volume < Decimal(pair.costmin):
                raise ApiError("EOrder:Cost minimum not met")
        if req.post_only and req.price is not None and self.market.crosses(pair.symbol, req.side, req.price):
            raise ApiError("EOrder:Post only order")
        fee_rate = pair.taker_fee_pct / 100
        if req.side is Side.BUY:
            if req.price is not None:
                need = req.volume * req.price * (1 + fee_rate)
            else:
                filled, cost = self.market.sweep_cost(pair.symbol, req.side, req.volume, None)
                if filled < req.volume:
                    raise ApiError("EOrder:Insufficient liquidity")
                need = cost * (1 + fee_rate)
            if need > self.available(pair.quote.asset_id):
                raise ApiError("EOrder:Insufficient funds")
        elif req.volume > self.available(pair.base.asset_id):
            raise ApiError("EOrder:Insufficient funds")

    def place(self, req: OrderRequest, now_wall: float) -> tuple[Order, StepResult]:
        """Count, check, accept and match an order; returns it and what it did to the market."""
        if not self.order_rate.add_order(req.pair.symbol, now_wall):
            raise RateLimitExceeded
        self.check(req)  # after the count: Kraken counts an add that then fails validation
        now_ns = int(now_wall * 1e9)
        order = Order(
            txid=self.ids.kraken_id("O"),
            pair=req.pair,
            side=req.side,
            ordertype=req.ordertype,
            volume=req.volume,
            price=req.price,
            userref=req.userref,
            cl_ord_id=req.cl_ord_id,
            opentm_ns=now_ns,
            timeinforce=req.timeinforce,
            oflags=",".join(
                f for f in ("post" if req.post_only else "", "fcib" if req.fee_in_base else "fciq") if f
            ),
            post_only=req.post_only,
        )
        self.orders[order.txid] = order
        self._emit(AccountEvent("pending_new", order=order, time_ns=now_ns))
        order.status = "open"
        if req.price is not None:
            fee_rate = req.pair.taker_fee_pct / 100
            order.hold = req.volume * req.price * (1 + fee_rate) if req.side is Side.BUY else req.volume
        self._emit(AccountEvent("new", order=order, time_ns=now_ns))
        rests = req.ordertype == "limit" and req.timeinforce.upper() == "GTC"
        result = self.market.submit(
            order.txid, req.pair.symbol, req.side, req.volume, req.price, now_wall, rest=rests
        )
        for fill in result.fills:
            self.apply_fill(fill)
        if order.status == "open" and not rests:
            # Market and IOC remainders do not rest.
            self._close(order, "canceled", now_ns, "Insufficient liquidity" if req.price is None else "IOC")
        return order, result

    def cancel(
        self, order: Order, now_wall: float, reason: str = "User requested", *, counted: bool = True
    ) -> None:
        """Cancel a client asked for (`counted`: on the pair's trading rate counter, by the order's
        age — refused with Kraken's error when it would pass the threshold)."""
        age_s = now_wall - order.opentm_ns / 1e9
        if counted and not self.order_rate.cancel_order(order.pair.symbol, age_s, now_wall):
            raise RateLimitExceeded
        self.market.cancel(order.txid)
        self._close(order, "canceled", int(now_wall * 1e9), reason)

    def amend(
        self, order: Order, volume: Decimal | None, price: Decimal | None, now_wall: float
    ) -> StepResult:
        """Kraken's amend: the order keeps its ids and takes the new quantity and/or limit price.
        A quantity at or below what has filled cancels the rest; a new price may cross the book and
        trade at once. Checked as an order is (tick, minimums, funds counting what the order holds
        already); refused with Kraken's strings and nothing changed."""
        if order.status != "open":
            raise ApiError("EOrder:Unknown order")
        if price is not None and order.ordertype != "limit":
            raise ApiError("EOrder:Invalid price")
        # An amend counts on the pair's trading rate counter (+1, more on a young order), like
        # an add or a cancel, whichever wire it came by.
        if not self.order_rate.amend_order(order.pair.symbol, now_wall - order.opentm_ns / 1e9, now_wall):
            raise RateLimitExceeded
        new_volume = order.volume if volume is None else volume
        new_price = order.price if price is None else price
        now_ns = int(now_wall * 1e9)
        if new_volume <= order.vol_exec:
            self.cancel(order, now_wall, counted=False)  # the amend counted already
            return StepResult()
        pair = order.pair
        remaining = new_volume - order.vol_exec
        if new_volume < Decimal(pair.ordermin):
            raise ApiError("EOrder:Order minimum not met")
        hold = remaining
        if new_price is not None:
            if new_price <= 0 or new_price % Decimal(pair.tick_size):
                raise ApiError("EOrder:Tick size check failed" if new_price > 0 else "EOrder:Invalid price")
            if order.side is Side.BUY:
                hold = remaining * new_price * (1 + pair.taker_fee_pct / 100)
        if hold > self.available(order.hold_asset.asset_id) + order.hold:
            raise ApiError("EOrder:Insufficient funds")
        self.market.cancel(order.txid)
        order.volume, order.price, order.hold = new_volume, new_price, hold
        self._emit(AccountEvent("amended", order=order, time_ns=now_ns))
        result = self.market.submit(
            order.txid, pair.symbol, order.side, remaining, new_price, now_wall, rest=True
        )
        for fill in result.fills:
            self.apply_fill(fill)
        return result

    def apply_fill(self, fill: Fill) -> None:
        order = self.orders.get(fill.order_ref)
        if order is None or order.status != "open":
            return
        pair = order.pair
        maker = fill.liquidity == "m"
        cost = _q(fill.price * fill.qty, pair.quote.decimals)
        fee_pct = pair.maker_fee_pct if maker else pair.taker_fee_pct
        fee = _q(cost * fee_pct / 100, pair.quote.decimals)
        base_id, quote_id = pair.base.asset_id, pair.quote.asset_id
        order.vol_exec += fill.qty
        order.cost += cost
        order.fee += fee
        if order.price is not None:
            if order.side is Side.BUY:
                release = fill.qty * order.price * (1 + pair.taker_fee_pct / 100)
            else:
                release = fill.qty
            order.hold = max(Decimal(0), order.hold - release)
        sign = 1 if order.side is Side.BUY else -1
        self.balances[base_id] = self.balances.get(base_id, Decimal(0)) + sign * fill.qty
        self.balances[quote_id] = self.balances.get(quote_id, Decimal(0)) - sign * cost - fee
        trade = OwnTrade(
            txid=self.ids.kraken_id("T"),
            order=order,
            postxid=self.ids.kraken_id("T"),
            time_ns=fill.time_ns,
            price=fill.price,
            vol=fill.qty,
            cost=cost,
            fee=fee,
            maker=maker,
            trade_id=fill.trade_id,
            cum_qty=order.vol_exec,
            cum_cost=order.cost,
        )
        base_entry = LedgerEntry(
            self.ids.kraken_id("L"),
            trade.txid,
            fill.time_ns,
            pair.base,
            sign * fill.qty,
            Decimal(0),
            self.balances[base_id],
        )
        quote_entry = LedgerEntry(
            self.ids.kraken_id("L"),
            trade.txid,
            fill.time_ns,
            pair.quote,
            -sign * cost,
            fee,
            self.balances[quote_id],
        )
        trade.ledgers = (base_entry.ledger_id, quote_entry.ledger_id)
        order.trades.append(trade.txid)
        self.trades[trade.txid] = trade
        if len(self.trades) > self._trades_kept:  # the oldest goes (insertion order is time order)
            del self.trades[next(iter(self.trades))]
        self.ledger.extend((base_entry, quote_entry))
        self._emit(AccountEvent("trade", order=order, trade=trade, time_ns=fill.time_ns))
        self._emit(AccountEvent("ledger", ledger=base_entry, time_ns=fill.time_ns))
        self._emit(AccountEvent("ledger", ledger=quote_entry, time_ns=fill.time_ns))
        if order.remaining <= 0:
            self._close(order, "closed", fill.time_ns, None)

    def apply_fills(self, fills: Iterable[Fill]) -> None:
        for fill in fills:
            self.apply_fill(fill)

    def _close(self, order: Order, status: str, now_ns: int, reason: str | None) -> None:
        order.status = status
        order.hold = Decimal(0)
        order.closetm_ns = now_ns
        order.reason = reason
        self._closed.append(order.txid)
        if len(self._closed) > self._closed_kept:
            self.orders.pop(self._closed.popleft(), None)
        self._emit(AccountEvent("filled" if status == "closed" else "canceled", order=order, time_ns=now_ns))

    def _emit(self, event: AccountEvent) -> None:
        for listener in list(self.listeners):
            listener(event)
