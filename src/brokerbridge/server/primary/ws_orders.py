"""The order frames of a `/primary/` socket (server/primary/ws.py): `os`, `no`, `co`.

`os` (`account` scope) subscribes the socket to the report feed (server/primary/reports.py) for the
bridge's account. `no` and `co` (`trade` scope) go to the server's `OrderDesk` as `/api/orders` and
the `/ws` ops do (`Bridge.place` / `Bridge.cancel`: idempotency, the bridge's order rules, the
journal), as tasks the desk owns: Primary answers them only with `or` reports (to the sockets that
sent `os`), or with its error frame. What the frame gets wrong is refused in Primary's words before
anything is sent (server/primary/shapes.py); an order the bridge's rules refuse, or with a feature
its order API does not route, gets a REJECTED report, as Primary rejects by its rules. Each `no` is a
new order, as on Primary (which does not check `wsClOrdId` for uniqueness): the bridge gives it a
client order id of its own and puts the caller's `wsClOrdId` on its first report.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from brokerbridge.core.errors import BrokerBridgeError, UnknownOrder
from brokerbridge.core.events import Side
from brokerbridge.core.orders import OrderRequest, TimeInForce, mint_client_order_id
from brokerbridge.io.primary.connector import PrimaryConnector
from brokerbridge.server.auth import Principal
from brokerbridge.server.order_desk import OrderDesk
from brokerbridge.server.primary.md import num
from brokerbridge.server.primary.reports import ReportFeed, ReportReader
from brokerbridge.server.primary.shapes import (
    invalid,
    missing,
    no_account,
    no_order,
    no_product,
    refused,
)
from brokerbridge.venues.primary import DEFAULT_MARKET, VENUE
from brokerbridge.venues.primary.wire_format import (
    ORDER_TYPES,
    SIDES,
    TIMES_IN_FORCE,
    parse_bool,
    parse_decimal,
    parse_enum,
)

logger = logging.getLogger(__name__)

_TIMES_IN_FORCE: dict[str, TimeInForce] = {"DAY": "day", "IOC": "ioc", "FOK": "fok", "GTC": "gtc"}


class Endpoint(Protocol):
    """What the order frames need of the endpoint (server/primary/ws.py's `PrimaryEndpoint`)."""

    @property
    def connector(self) -> PrimaryConnector: ...

    @property
    def reports(self) -> ReportFeed | None: ...

    @property
    def orders(self) -> OrderDesk: ...

    def listed(self, symbol: str) -> bool: ...


class Connection(ReportReader, Protocol):
    """What they need of their socket (server/primary/ws.py's `PrimaryConnection`)."""

    @property
    def principal(self) -> Principal: ...

    def error(self, request: str, description: str) -> None: ...


def needs(principal: Principal, scope: str, what: str) -> None:
    """Primary's refusal (`Access Denied`) when `principal` lacks `scope` for `what`."""
    if not principal.allows(scope):
        raise refused(
            f"Access Denied: {what} needs the '{scope}' scope, which this token lacks "
            "(get a token with it: a user or key with that scope)"
        )


class OrderFrames:
    def __init__(self, connection: Connection, endpoint: Endpoint) -> None:
        self._connection = connection
        self._endpoint = endpoint
        self.subscribed = False  # the socket sent `os`

    def closed(self) -> None:
        reports = self._endpoint.reports
        if self.subscribed and reports is not None:
            reports.unsubscribe(self._connection)

    def _needs(self, scope: str, what: str) -> None:
        needs(self._connection.principal, scope, what)

    def os(self, message: dict[str, Any], _text: str) -> None:
        self._needs("account", "order reports")
        reports = self._endpoint.reports
        account = message.get("account")
        wanted: list[str] = []
        if isinstance(account, dict):
            wanted.append(str(account.get("id")))
        elif isinstance(account, str | int):
            wanted.append(str(account))
        accounts = message.get("accounts")
        if isinstance(accounts, list):
            wanted.extend(str(a.get("id")) if isinstance(a, dict) else str(a) for a in accounts)
        for name in wanted:
            if reports is None or name != reports.account:
                raise no_account(name)
        if reports is None:
            raise refused("Access Denied: this bridge has no Primary account (primary.account)")
        if parse_bool(message.get("snapshotOnlyActive"), default=False) is None:
            raise invalid("snapshotOnlyActive", message.get("snapshotOnlyActive"))
        reports.subscribe(self._connection)
        self.subscribed = True

    def no(self, message: dict[str, Any], text: str) -> None:
        self._needs("trade", "order entry")
        reports = self._endpoint.reports
        product = message.get("product") if isinstance(message.get("product"), dict) else {}
        assert isinstance(product, dict)
        symbol, market = product.get("symbol"), product.get("marketId") or DEFAULT_MARKET
        for name, value in (
            ("product", symbol),
            ("quantity", message.get("quantity")),
            ("side", message.get("side")),
            ("account", message.get("account")),
        ):
            if value in (None, ""):
                raise missing(name)
        if not isinstance(symbol, str) or market != DEFAULT_MARKET or not self._endpoint.listed(symbol):
            raise no_product(symbol, market)
        if reports is None or str(message["account"]) != reports.account:
            raise no_account(message["account"])
        qty = parse_decimal(message["quantity"])
        if qty is None or qty <= 0:
            raise invalid("quantity", message["quantity"])
        side = parse_enum(message["side"], SIDES)
        if side is None:
            raise invalid("side", message["side"])
        ord_type = parse_enum(message.get("ordType", "LIMIT"), ORDER_TYPES)
        if ord_type is None:
            raise invalid("ordType", message.get("ordType"))
        tif = parse_enum(message.get("timeInForce", "DAY"), TIMES_IN_FORCE)
        if tif is None:
            raise invalid("timeInForce", message.get("timeInForce"))
        price = None
        if message.get("price") not in (None, ""):
            price = parse_decimal(message["price"])
            if price is None:
                raise invalid("price", message["price"])
        flags = {}
        for name in ("iceberg", "allOrNone", "cancelPrevious"):
            flags[name] = parse_bool(message.get(name), default=False)
            if flags[name] is None:
                raise invalid(name, message.get(name))
        ws_id = message.get("wsClOrdId")
        client_order_id = mint_client_order_id()
        reports.placing(client_order_id, None if ws_id is None else str(ws_id), tif)
        terms = {
            "instrumentId": {"marketId": DEFAULT_MARKET, "symbol": symbol},
            "price": num(price),
            "orderQty": num(qty),
            "ordType": ord_type,
            "side": side,
            "timeInForce": tif,
        }
        unrouted = _unrouted(ord_type, tif, flags)
        if unrouted is not None:
            reports.refused(client_order_id, terms, f"Rechazada: {unrouted} (not routed by this bridge)")
            return
        request = OrderRequest(
            venue=VENUE,
            symbol=symbol,
            side=Side(side.lower()),
            qty=qty,
            type="market" if ord_type == "MARKET" else "limit",
            price=None if ord_type == "MARKET" else price,
            client_order_id=client_order_id,
            time_in_force=_TIMES_IN_FORCE[tif],
        )
        self._endpoint.orders.run(self._place(request, terms, text), f"primary ws no {client_order_id}")

    async def _place(self, request: OrderRequest, terms: dict[str, Any], text: str) -> None:
        reports = self._endpoint.reports
        assert reports is not None and request.client_order_id is not None
        try:
            await self._endpoint.orders.place(request)
        except BrokerBridgeError as exc:
            # No report of the order came: it never reached Primary (or Primary's went missing).
            if reports.unreported(request.client_order_id):
                reports.refused(request.client_order_id, terms, exc.message)
        except Exception:  # our bug: the order's outcome is on the bridge's order list
            logger.exception("primary ws: placing %s failed", request.client_order_id)
            self._connection.error(text, "Internal error: the order's outcome is unknown, check order/all")

    def co(self, message: dict[str, Any], text: str) -> None:
        self._needs("trade", "order entry")
        client_id = message.get("clientId")
        if client_id in (None, ""):
            raise missing("clientId")
        connector = self._endpoint.connector
        booked = connector.booked_proprietary(str(client_id))
        proprietary = message.get("proprietary") or booked or connector.proprietary_of(str(client_id))
        if booked is not None and proprietary != booked:  # as Primary (and /primary/ REST): named by both
            raise no_order(client_id, proprietary)
        self._endpoint.orders.run(
            self._cancel(str(client_id), str(proprietary), text), f"primary ws co {str(client_id)[:40]}"
        )

    async def _cancel(self, client_id: str, proprietary: str, text: str) -> None:
        try:
            await self._endpoint.orders.cancel(VENUE, client_id)
        except UnknownOrder:
            self._connection.error(text, no_order(client_id, proprietary).body.description)
        except BrokerBridgeError as exc:
            self._connection.error(text, exc.message)
        except Exception:  # our bug
            logger.exception("primary ws: canceling %s failed", client_id)
            self._connection.error(text, "Internal error: the cancel's outcome is unknown, check order/all")


def _unrouted(ord_type: str, tif: str, flags: dict[str, bool | None]) -> str | None:
    """What of a `no` the bridge's order API does not carry (None: nothing)."""
    if ord_type not in ("LIMIT", "MARKET"):
        return f"tipo de orden {ord_type} no habilitado"
    if tif not in _TIMES_IN_FORCE:
        return f"timeInForce {tif} no habilitado"
    for name, on in flags.items():
        if on:
            return f"{name} no habilitado"
    return None
