"""`or` frames of the `/primary/` WebSocket: the Bridge's order events as Primary's order reports.

One `ReportFeed` per server listens to the Bridge's Primary `executions` stream (held by the Bridge
from start) while any connection has sent `os`, and turns each `OrderUpdate` into one report,
encoded once for every subscribed connection. The `Fill` that follows an update of the same upstream
report (venues/primary/normalize.py emits the update, then the fill) adds its `lastPx`, `lastQty`
and `execId` to that report: the reports go out on the loop's next turn, after the events of the
same upstream report came.

Ids, so that `/primary/` REST and WebSocket agree with each other and with Primary: `clOrdId` is
the Bridge's Primary order id (the clOrdId of the order's first request upstream), `proprietary`
the one it was booked under (`PrimaryConnector.proprietary_of`, as `/primary/` REST names it),
`accountId` the bridge's account. The
bridge keeps no Primary `orderId` (the exchange's own number): `orderId` repeats the `clOrdId` once
the order is past PENDING_NEW (null before, as Primary). `wsClOrdId` — the caller's, given with
`no` — is on the order's first report only, as Primary does.

An order the bridge refused before it went upstream (its local rules: tick, lot, minimums; a
feature it does not route — GTD, iceberg, MARKET_TO_LIMIT) gets the report Primary gives an order
its rules reject: one REJECTED report with the reason in `text`, to the `os` subscribers, as
any report.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import msgspec

from brokerbridge.bridge import Bridge, Listening
from brokerbridge.core.events import AnyEvent, Channel, Fill, OrderUpdate
from brokerbridge.io.primary.connector import PrimaryConnector
from brokerbridge.server.primary.md import num
from brokerbridge.venues.primary import DEFAULT_MARKET, VENUE
from brokerbridge.venues.primary.wire_format import transact_time

MAX_ORDERS = 10_000  # orders whose terms are remembered (the oldest forgotten first)
# Primary's texts by status where the bridge has no reason of its own (the reMarkets captures).
_TEXTS = {
    "PENDING_NEW": "Enviada",
    "NEW": "Aceptada ",
    "PARTIALLY_FILLED": "Operada ",
    "FILLED": "Operada ",
    "CANCELLED": "Cancelada",
}
_SKIPPED = frozenset({"unknown", "resolved"})  # the bridge's own states: no report of Primary's
_ACTIVE = frozenset({"PENDING_NEW", "NEW", "PARTIALLY_FILLED"})

_encoder = msgspec.json.Encoder(decimal_format="number")


class ReportReader(Protocol):
    """A connection that sent `os` (server/primary/ws.py's `PrimaryConnection`)."""

    def send_report(self, data: bytes) -> None: ...


@dataclass(slots=True)
class Placed:
    """What a `no` said that the Bridge's events do not carry."""

    ws_cl_ord_id: str | None
    time_in_force: str
    reported: bool = False  # its first report went out (the one with the wsClOrdId)


@dataclass(slots=True)
class _Order:
    """An order's terms as its updates told them (the Bridge's updates may leave fields unset)."""

    symbol: str | None = None
    side: str | None = None
    ord_type: str | None = None
    qty: Decimal | None = None
    price: Decimal | None = None
    cum_qty: Decimal = Decimal(0)
    avg_px: Decimal = Decimal(0)
    status: str = "PENDING_NEW"
    time_in_force: str = "DAY"
    placed: Placed | None = None


@dataclass(slots=True)
class _Pending:
    order_id: str
    report: dict[str, Any]
    filled: bool = False  # a fill's lastPx/lastQty are in it


class ReportFeed:
    def __init__(self, bridge: Bridge, connector: PrimaryConnector) -> None:
        self.bridge = bridge
        self._connector = connector
        assert connector.account is not None
        self.account: str = connector.account
        self._readers: dict[ReportReader, None] = {}
        self._orders: OrderedDict[str, _Order] = OrderedDict()  # by the Bridge's order id
        self._placed: OrderedDict[str, Placed] = OrderedDict()  # by client order id, until reported
        self._pending: list[_Pending] = []  # reports going out on the loop's next turn
        self._listening: Listening | None = None
        self._replaying = False  # the Bridge is giving a new listener the open orders

    # -- readers -------------------------------------------------------------------------------
    def subscribe(self, reader: ReportReader) -> None:
        """`reader` gets the reports of the orders the bridge believes open (the bridge keeps
        the open orders, not the day's closed ones), then every report from now on."""
        if self._listening is None:
            sub = self.bridge.subscription(VENUE, Channel.EXECUTIONS)
            # The Bridge replays the open orders to a new listener: taken in as state only.
            self._replaying = True
            try:
                self._listening = self.bridge.listen(sub, self._on_event, lambda _error: None)
            finally:
                self._replaying = False
        if reader in self._readers:
            return
        self._readers[reader] = None
        for update in self.bridge.open_orders(VENUE):
            if update.status not in _SKIPPED:
                reader.send_report(self._encode(self._report(update, self._order(update))))

    def unsubscribe(self, reader: ReportReader) -> None:
        self._readers.pop(reader, None)
        if not self._readers and self._listening is not None:
            self._listening.close()
            self._listening = None

    # -- orders placed over /primary/ ----------------------------------------------------------
    def placing(self, client_order_id: str, ws_cl_ord_id: str | None, time_in_force: str) -> None:
        """A `no` is going to the Bridge under `client_order_id` (before it does: its first
        report may come before the Bridge's answer)."""
        self._placed[client_order_id] = Placed(ws_cl_ord_id, time_in_force)
        while len(self._placed) > MAX_ORDERS:
            self._placed.popitem(last=False)

    def unreported(self, client_order_id: str) -> bool:
        """Whether no report of the order placed as `client_order_id` came (yet)."""
        return client_order_id in self._placed

    def refused(self, client_order_id: str, terms: dict[str, Any], text: str) -> None:
        """The bridge refused the order before it went upstream: its REJECTED report."""
        placed = self._placed.pop(client_order_id, None)
        report: dict[str, Any] = {
            "orderId": None,
            "clOrdId": client_order_id,
            "proprietary": self._connector.proprietary_of(client_order_id),
            "accountId": {"id": self.account},
            **terms,
            "transactTime": transact_time(self.bridge.clock.time()),
            "status": "REJECTED",
            "text": text,
        }
        if placed is not None and placed.ws_cl_ord_id is not None:
            report["wsClOrdId"] = placed.ws_cl_ord_id
        self._queue(_Pending(client_order_id, report))

    # -- the Bridge's events -------------------------------------------------------------------
    def _on_event(self, event: AnyEvent) -> None:
        if isinstance(event, OrderUpdate):
            if event.status in _SKIPPED:
                return
            order = self._order(event)
            if self._replaying or (
                event.snapshot and order.status == _status(event.status) and event.cum_qty == order.cum_qty
            ):
                self._merge(order, event)
                return
            report = self._report(event, order)
            self._queue(_Pending(event.order_id, report))
        elif isinstance(event, Fill) and not event.snapshot:
            last = self._pending[-1] if self._pending else None
            if last is None or last.order_id != event.order_id or last.filled:
                return  # a fill found by reconciliation: its order's update tells the state
            last.filled = True
            last.report.update(lastPx=num(event.price), lastQty=num(event.qty))
            last.report["execId"] = event.exec_id

    def _order(self, update: OrderUpdate) -> _Order:
        order = self._orders.get(update.order_id)
        if order is None:
            order = self._orders[update.order_id] = _Order()
            if update.client_order_id is not None:
                order.placed = self._placed.pop(update.client_order_id, None)
                if order.placed is not None:
                    order.time_in_force = order.placed.time_in_force
            while len(self._orders) > MAX_ORDERS:
                self._orders.popitem(last=False)
        return order

    def _merge(self, order: _Order, update: OrderUpdate) -> None:
        order.symbol = update.symbol or order.symbol
        order.side = update.side.value.upper() if update.side is not None else order.side
        order.ord_type = update.order_type.upper() if update.order_type else order.ord_type
        order.qty = update.qty if update.qty is not None else order.qty
        order.price = update.limit_price if update.limit_price is not None else order.price
        order.cum_qty = update.cum_qty if update.cum_qty is not None else order.cum_qty
        order.avg_px = update.avg_price if update.avg_price is not None else order.avg_px
        order.status = _status(update.status)

    def _report(self, update: OrderUpdate, order: _Order) -> dict[str, Any]:
        """The order report of `update` (key order as Primary's; PENDING_NEW without execution
        fields)."""
        self._merge(order, update)
        status = order.status
        pending = status == "PENDING_NEW"
        report: dict[str, Any] = {
            "orderId": None if pending else update.order_id,
            "clOrdId": update.order_id,
            "proprietary": self._connector.proprietary_of(update.order_id),
        }
        if not pending:
            report["execId"] = None
        report["accountId"] = {"id": self.account}
        report["instrumentId"] = {"marketId": DEFAULT_MARKET, "symbol": order.symbol}
        report["price"] = num(order.price)
        report["orderQty"] = num(order.qty)
        report["ordType"] = order.ord_type
        report["side"] = order.side
        report["timeInForce"] = order.time_in_force
        report["transactTime"] = transact_time(update.ts)
        if not pending:
            qty = order.qty or Decimal(0)
            leaves = qty - order.cum_qty if status in _ACTIVE else Decimal(0)
            report["avgPx"] = num(order.avg_px)
            report["lastPx"] = 0
            report["lastQty"] = 0
            report["cumQty"] = num(order.cum_qty)
            report["leavesQty"] = num(max(leaves, Decimal(0)))
        report["status"] = status
        report["text"] = update.reason or _TEXTS.get(status, "")
        placed = order.placed
        if placed is not None and not placed.reported:
            placed.reported = True
            if placed.ws_cl_ord_id is not None:
                report["wsClOrdId"] = placed.ws_cl_ord_id
        return report

    def _queue(self, pending: _Pending) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._send_pending)
        self._pending.append(pending)

    def _send_pending(self) -> None:
        pending, self._pending = self._pending, []
        for item in pending:
            data = self._encode(item.report)
            for reader in list(self._readers):
                reader.send_report(data)

    def _encode(self, report: dict[str, Any]) -> bytes:
        return _encoder.encode(
            {"type": "or", "timestamp": int(self.bridge.clock.time() * 1000), "orderReport": report}
        )


def _status(status: str) -> str:
    """The bridge's status in Primary's words (`canceled` → `CANCELLED`)."""
    upper = status.upper()
    return "CANCELLED" if upper == "CANCELED" else upper
