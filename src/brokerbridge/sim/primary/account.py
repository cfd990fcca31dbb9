"""The demo account of the simulated Primary: order requests and their reports, positions and cash.

Every order request (a `clOrdId`) keeps the history of its execution reports; REST `/rest/order/*`
reads those histories and WebSocket `os` subscribers receive each report as it is made. The life of a
request follows the reMarkets captures (§3.6, §9.8):

    PENDING_NEW ("Enviada", orderId null, no execId/fill fields, wsClOrdId if sent over WS)
      → REJECTED (text = reason)          business rules (tick, price limits, lot, funds, order type, TIF)
      → NEW ("Aceptada ")                  orderId and execId assigned
      → PARTIALLY_FILLED / FILLED ("Operada ")   one report per fill
      → CANCELLED ("Cancelada")            IOC/FOK/MARKET leftovers, or a cancel request
A cancel is its own request with its own clOrdId: it reports CANCELLED with `origClOrdId`, then the
original reports CANCELLED (the xOMS sequence, §4.3); cancelling a request that is no longer active
reports the cancel request REJECTED ("Orden no activa"; the real text is not public). A replace
(`replaceById`) reports the original CANCELLED "Reemplazada" and a new request NEW with
`origClOrdId`, carrying the filled quantity over.

Reject texts are not public (§10.5); the simulator's are short Spanish sentences in reMarkets' style.
Cash moves on fills of BYMA spot instruments only (`PrimaryInstrument.cash_settled`); positions move
for everything. Uncovered sells are allowed (documented simplification).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from brokerbridge.sim.market import BookSide, Fill, Market, Side, StepResult
from brokerbridge.sim.primary.catalog import HIGH_LIMIT_PRICE, LOW_LIMIT_PRICE, Catalog, PrimaryInstrument
from brokerbridge.venues.primary.wire_format import num, transact_time

ACTIVE = ("PENDING_NEW", "NEW", "PARTIALLY_FILLED")
# Requests that ended (filled, cancelled, rejected): Primary's order queries answer the day's
# orders; the simulator keeps the newest 5,000 ended ones (a few KB each with their reports) however
# long it runs — its session does not roll over. Active requests are always kept.
ENDED_KEPT = 5_000
REJECT_TICK = "Rechazada: el precio no es múltiplo del tick {tick}"
REJECT_PRICE_MISSING = "Rechazada: una orden LIMIT requiere precio"
REJECT_QTY = "Rechazada: cantidad fuera de rango ({low} a {high})"
REJECT_PRICE_BAND = "Rechazada: precio fuera de los límites ({low} a {high})"
REJECT_ORD_TYPE = "Rechazada: tipo de orden {ord_type} no habilitado para el instrumento"
REJECT_TIF = "Rechazada: timeInForce {tif} no habilitado para el instrumento"
REJECT_EXPIRE = "Rechazada: una orden GTD requiere expireDate"
REJECT_FUNDS = "Rechazada: saldo insuficiente en {currency}"
REJECT_NO_BOOK = "Rechazada: no hay ofertas en el mercado"
REJECT_NOT_ACTIVE = "Orden no activa"


class OrderError(Exception):
    """A request the venue refuses outright (REST `{"status":"ERROR"}`, WS error frame)."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A new order as parsed from REST query parameters or a WS `no` frame."""

    instrument: PrimaryInstrument
    account: str
    side: str  # BUY | SELL
    ord_type: str  # LIMIT | MARKET | MARKET_TO_LIMIT
    time_in_force: str  # DAY | IOC | FOK | GTD | GTC
    qty: Decimal
    price: Decimal | None
    expire_date: str | None = None
    iceberg: bool = False
    display_qty: Decimal | None = None
    cancel_previous: bool = False
    ws_cl_ord_id: str | None = None


@dataclass(slots=True)
class Order:
    cl_ord_id: str
    proprietary: str
    account: str
    instrument: PrimaryInstrument
    side: str
    ord_type: str
    time_in_force: str
    qty: Decimal
    price: Decimal | None
    transact: float  # wall seconds of the last report
    order_id: str | None = None
    status: str = "PENDING_NEW"
    text: str = "Enviada"
    exec_id: str | None = None
    cum_qty: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)  # Σ price × qty of the fills
    last_px: Decimal = Decimal(0)
    last_qty: Decimal = Decimal(0)
    iceberg: bool = False
    display_qty: Decimal | None = None
    expire_date: str | None = None
    orig_cl_ord_id: str | None = None
    ws_cl_ord_id: str | None = None
    reports: list[dict[str, Any]] = field(default_factory=list)

    @property
    def leaves_qty(self) -> Decimal:
        return Decimal(0) if self.status not in ACTIVE else self.qty - self.cum_qty

    @property
    def avg_px(self) -> Decimal:
        return (self.cost / self.cum_qty).quantize(Decimal("0.001")) if self.cum_qty else Decimal(0)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def market_side(self) -> Side:
        return Side.BUY if self.side == "BUY" else Side.SELL

    def report(self) -> dict[str, Any]:
        """The order report in the captured key order; PENDING_NEW omits execId and fill fields."""
        pending = self.status == "PENDING_NEW"
        out: dict[str, Any] = {
            "orderId": self.order_id,
            "clOrdId": self.cl_ord_id,
            "proprietary": self.proprietary,
        }
        if not pending:
            out["execId"] = self.exec_id
        out["accountId"] = {"id": self.account}
        out["instrumentId"] = self.instrument.instrument_id
        out["price"] = num(self.price) if self.price is not None else None
        out["orderQty"] = num(self.qty)
        out["ordType"] = self.ord_type
        out["side"] = self.side
        out["timeInForce"] = self.time_in_force
        out["transactTime"] = transact_time(self.transact)
        if not pending:
            out["avgPx"] = num(self.avg_px)
            out["lastPx"] = num(self.last_px)
            out["lastQty"] = num(self.last_qty)
            out["cumQty"] = num(self.cum_qty)
            out["leavesQty"] = num(self.leaves_qty)
            if self.iceberg:
                out["iceberg"] = "true"
                out["displayQty"] = num(self.display_qty or Decimal(0))
        if self.expire_date is not None:
            out["expireDate"] = self.expire_date
        out["status"] = self.status
        out["text"] = self.text
        if self.orig_cl_ord_id is not None:
            out["origClOrdId"] = self.orig_cl_ord_id
        return out


@dataclass(slots=True)
class Position:
    buy_size: Decimal = Decimal(0)
    buy_cost: Decimal = Decimal(0)
    sell_size: Decimal = Decimal(0)
    sell_cost: Decimal = Decimal(0)

    @property
    def net(self) -> Decimal:
        return self.buy_size - self.sell_size

    @property
    def buy_price(self) -> Decimal:
        return self.buy_cost / self.buy_size if self.buy_size else Decimal(0)

    @property
    def sell_price(self) -> Decimal:
        return self.sell_cost / self.sell_size if self.sell_size else Decimal(0)


class IdMaker:
    """reMarkets-looking ids from a seeded generator: numeric clOrdId/orderId, `T<n>` execIds."""

    def __init__(self, rng: random.Random) -> None:
        self._cl = rng.randrange(310_000_000_000_000, 319_000_000_000_000)
        self._order = rng.randrange(138_000_000, 139_000_000)
        self._exec = rng.randrange(4_000_000, 5_000_000)

    def cl_ord_id(self) -> str:
        self._cl += 1 + (self._cl % 7)
        return str(self._cl)

    def order_id(self) -> str:
        self._order += 1
        return str(self._order)

    def exec_id(self) -> str:
        self._exec += 1
        return f"T{self._exec}"


ReportListener = Callable[[str, dict[str, Any]], None]


class Account:
    """One trading account; not thread-safe (driven from the simulator's event loop)."""

    def __init__(
        self,
        account_id: str,
        proprietary: str,
        catalog: Catalog,
        market: Market,
        ids: IdMaker,
        cash: dict[str, Decimal],
        *,
        ended_kept: int = ENDED_KEPT,
    ) -> None:
        self.account_id = account_id
        self.proprietary = proprietary
        self.catalog = catalog
        self.market = market
        self.ids = ids
        self.cash = dict(cash)
        self.initial_cash = dict(cash)
        self.positions: dict[str, Position] = {}
        self.orders: dict[str, Order] = {}  # by clOrdId, in creation order
        self._by_order_id: dict[str, Order] = {}  # the live request of an orderId (replaces move it)
        self._by_exec_id: dict[str, dict[str, Any]] = {}
        self._ended: deque[Order] = deque()  # requests that ended, oldest first
        self._ended_kept = ended_kept
        self.listeners: list[ReportListener] = []

    # -- queries ---------------------------------------------------------------------------------------
    def find(self, cl_ord_id: str, proprietary: str) -> Order:
        order = self.orders.get(cl_ord_id)
        if order is None or order.proprietary != proprietary:
            raise OrderError(f"Order {cl_ord_id}:{proprietary} doesn't exist")
        return order

    def by_order_id(self, order_id: str) -> Order | None:
        return self._by_order_id.get(order_id)

    def by_exec_id(self, exec_id: str) -> dict[str, Any] | None:
        return self._by_exec_id.get(exec_id)

    def latest_reports(self, statuses: tuple[str, ...] | None = None) -> Iterator[dict[str, Any]]:
        for order in self.orders.values():
            if order.reports and (statuses is None or order.status in statuses):
                yield order.reports[-1]

    # -- requests --------------------------------------------------------------------------------------
    def new_order(self, request: OrderRequest, now: float) -> tuple[Order, StepResult]:
        """Run a new order through its life now; returns it and what it did to the market."""
        order = Order(
            cl_ord_id=self.ids.cl_ord_id(),
            proprietary=self.proprietary,
            account=self.account_id,
            instrument=request.instrument,
            side=request.side,
            ord_type=request.ord_type,
            time_in_force=request.time_in_force,
            qty=request.qty,
            price=request.price if request.ord_type == "LIMIT" else None,
            transact=now,
            iceberg=request.iceberg,
            display_qty=request.display_qty,
            expire_date=request.expire_date if request.time_in_force == "GTD" else None,
            ws_cl_ord_id=request.ws_cl_ord_id,
        )
        self.orders[order.cl_ord_id] = order
        self._emit(order, first=True)
        reason = self._check(order)
        if reason is not None:
            self._update(order, "REJECTED", reason, now)
            return order, StepResult()
        result = StepResult()
        if request.cancel_previous:
            for other in list(self.orders.values()):
                if (
                    other is not order
                    and other.active
                    and other.instrument is order.instrument
                    and other.side == order.side
                    and other.order_id is not None
                ):
                    self.cancel(other.cl_ord_id, other.proprietary, now)
        order.order_id = self.ids.order_id()
        self._by_order_id[order.order_id] = order
        self._update(order, "NEW", "Aceptada ", now)
        result.merge(self._match(order, now))
        return order, result

    def cancel(self, cl_ord_id: str, proprietary: str, now: float) -> Order:
        """A cancel request for `cl_ord_id`; returns the cancel request (its own clOrdId)."""
        original = self.find(cl_ord_id, proprietary)
        request = self._follow_up(original, now)
        if not original.active:
            self._update(request, "REJECTED", REJECT_NOT_ACTIVE, now)
            return request
        if original.order_id is not None:
            self.market.cancel(original.order_id)
        request.cum_qty, request.cost = original.cum_qty, original.cost
        request.last_px, request.last_qty = original.last_px, original.last_qty
        self._update(request, "CANCELLED", "Cancelada", now)
        self._update(original, "CANCELLED", "Cancelada", now)
        return request

    def replace(
        self, cl_ord_id: str, proprietary: str, qty: Decimal, price: Decimal | None, now: float
    ) -> tuple[Order, StepResult]:
        original = self.find(cl_ord_id, proprietary)
        request = self._follow_up(original, now)
        request.qty = qty
        if price is not None and original.ord_type == "LIMIT":
            request.price = price
        if not original.active:
            self._update(request, "REJECTED", REJECT_NOT_ACTIVE, now)
            return request, StepResult()
        request.cum_qty, request.cost = original.cum_qty, original.cost
        reason = self._check(request)
        if reason is None and request.qty <= original.cum_qty:
            reason = REJECT_QTY.format(low=num(original.cum_qty + 1), high=request.instrument.max_trade_vol)
        if reason is not None:
            self._update(request, "REJECTED", reason, now)
            return request, StepResult()
        if original.order_id is not None:
            self.market.cancel(original.order_id)
            self._by_order_id[original.order_id] = request
        self._update(original, "CANCELLED", "Reemplazada", now)
        self._update(request, "NEW", "Aceptada ", now)
        return request, self._match(request, now)

    # -- market ------------------------------------------------------------------------------------------
    def apply_fills(self, fills: list[Fill], now: float) -> None:
        for fill in fills:
            order = self._by_order_id.get(fill.order_ref)
            if order is not None and order.active:
                self._fill(order, fill.price, fill.qty, now)

    # -- internals ---------------------------------------------------------------------------------------
    def _follow_up(self, original: Order, now: float) -> Order:
        request = Order(
            cl_ord_id=self.ids.cl_ord_id(),
            proprietary=original.proprietary,
            account=original.account,
            instrument=original.instrument,
            side=original.side,
            ord_type=original.ord_type,
            time_in_force=original.time_in_force,
            qty=original.qty,
            price=original.price,
            transact=now,
            order_id=original.order_id,
            iceberg=original.iceberg,
            display_qty=original.display_qty,
            expire_date=original.expire_date,
            orig_cl_ord_id=original.cl_ord_id,
        )
        self.orders[request.cl_ord_id] = request
        return request

    def _check(self, order: Order) -> str | None:
        inst = order.instrument
        if order.ord_type not in inst.order_types:
            return REJECT_ORD_TYPE.format(ord_type=order.ord_type)
        if order.time_in_force not in inst.times_in_force:
            return REJECT_TIF.format(tif=order.time_in_force)
        if order.time_in_force == "GTD" and not order.expire_date:
            return REJECT_EXPIRE
        if order.qty != order.qty.to_integral_value() or not (
            inst.min_trade_vol <= order.qty <= inst.max_trade_vol
        ):
            return REJECT_QTY.format(low=inst.min_trade_vol, high=inst.max_trade_vol)
        if order.ord_type == "LIMIT":
            if order.price is None:
                return REJECT_PRICE_MISSING
            if order.price <= 0 or order.price % inst.tick != 0:
                return REJECT_TICK.format(tick=num(inst.tick))
            if not LOW_LIMIT_PRICE <= order.price <= HIGH_LIMIT_PRICE:
                return REJECT_PRICE_BAND.format(low=num(LOW_LIMIT_PRICE), high=num(HIGH_LIMIT_PRICE))
        if order.side == "BUY" and inst.cash_settled:
            limit = self._limit(order)
            if limit is None:
                return REJECT_NO_BOOK
            filled, cost = self.market.sweep_cost(inst.symbol, Side.BUY, order.qty - order.cum_qty, limit)
            rest = order.qty - order.cum_qty - filled
            needed = inst.notional(Decimal(1), cost) + inst.notional(limit, rest)
            if needed > self.available_cash(inst.currency):
                return REJECT_FUNDS.format(currency=inst.currency)
        return None

    def available_cash(self, currency: str) -> Decimal:
        """Cash minus what resting buy orders have reserved."""
        reserved = sum(
            (
                o.instrument.notional(o.price, o.leaves_qty)
                for o in self.orders.values()
                if o.active
                and o.side == "BUY"
                and o.price is not None
                and o.order_id is not None
                and o.instrument.cash_settled
                and o.instrument.currency == currency
            ),
            Decimal(0),
        )
        return self.cash.get(currency, Decimal(0)) - reserved

    def _limit(self, order: Order) -> Decimal | None:
        """The price limit to match with: LIMIT → its price; MARKET_TO_LIMIT → the opposite touch;
        MARKET → the worst price it could reach (the far end of the opposite book)."""
        if order.ord_type == "LIMIT":
            return order.price
        book = self.market.book(order.instrument.symbol)
        opposite = BookSide.ASK if order.side == "BUY" else BookSide.BID
        if order.ord_type == "MARKET_TO_LIMIT":
            return book.best(opposite)
        prices = book.prices(opposite)
        return prices[-1] if prices else None

    def _match(self, order: Order, now: float) -> StepResult:
        inst = order.instrument
        remaining = order.qty - order.cum_qty
        limit = order.price if order.ord_type == "LIMIT" else self._limit(order)
        if order.ord_type == "MARKET_TO_LIMIT" and limit is None:
            self._update(order, "CANCELLED", "Cancelada", now)
            return StepResult()
        if order.time_in_force == "FOK":
            filled, _ = self.market.sweep_cost(inst.symbol, order.market_side, remaining, limit)
            if filled < remaining:
                self._update(order, "CANCELLED", "Cancelada", now)
                return StepResult()
        rests = order.ord_type != "MARKET" and order.time_in_force not in ("IOC", "FOK")
        assert order.order_id is not None
        result = self.market.submit(
            order.order_id,
            inst.symbol,
            order.market_side,
            remaining,
            None if order.ord_type == "MARKET" else limit,
            now,
            rest=rests,
        )
        for fill in result.fills:
            self._fill(order, fill.price, fill.qty, now)
        if order.active and not rests:
            self._update(order, "CANCELLED", "Cancelada", now)
        return result

    def _fill(self, order: Order, price: Decimal, qty: Decimal, now: float) -> None:
        inst = order.instrument
        order.cum_qty += qty
        order.cost += price * qty
        order.last_px, order.last_qty = price, qty
        position = self.positions.setdefault(inst.symbol, Position())
        value = inst.notional(price, qty)
        if order.side == "BUY":
            position.buy_size += qty
            position.buy_cost += price * qty
        else:
            position.sell_size += qty
            position.sell_cost += price * qty
        if inst.cash_settled:
            delta = -value if order.side == "BUY" else value
            self.cash[inst.currency] = self.cash.get(inst.currency, Decimal(0)) + delta
        done = order.cum_qty >= order.qty
        self._update(order, "FILLED" if done else "PARTIALLY_FILLED", "Operada ", now)
        order.last_px, order.last_qty = Decimal(0), Decimal(0)

    def _update(self, order: Order, status: str, text: str, now: float) -> None:
        ends = order.active and status not in ACTIVE
        order.status, order.text, order.transact = status, text, now
        order.exec_id = self.ids.exec_id()
        self._emit(order, first=False)
        if ends:
            self._ended.append(order)
            if len(self._ended) > self._ended_kept:
                self._forget(self._ended.popleft())

    def _forget(self, order: Order) -> None:
        """Drop an ended request and its reports from every lookup."""
        if self.orders.get(order.cl_ord_id) is order:
            del self.orders[order.cl_ord_id]
        if order.order_id is not None and self._by_order_id.get(order.order_id) is order:
            del self._by_order_id[order.order_id]
        for report in order.reports:
            exec_id = report.get("execId")
            if exec_id is not None and self._by_exec_id.get(exec_id) is report:
                del self._by_exec_id[exec_id]

    def _emit(self, order: Order, *, first: bool) -> None:
        report = order.report()
        if first and order.ws_cl_ord_id is not None:
            report["wsClOrdId"] = order.ws_cl_ord_id  # only the first report carries it (§4.3)
        order.reports.append(report)
        if not first:
            self._by_exec_id[report["execId"]] = report
        for listener in list(self.listeners):
            listener(order.account, report)
