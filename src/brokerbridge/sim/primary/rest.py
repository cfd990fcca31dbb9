"""Primary REST as served by the simulator: `/auth/*` and every `/rest/*` path of §3.2.

All calls but getToken are GET with query strings. Query values are decoded by Starlette, so
`%2F`, `%20` and `+` all work, and a raw `/` inside a value (as pyRofex sends `DLR/DIC23`) is kept.
Parameter names are matched case-insensitively (`marketId`, `MarketID`).

Auth choices (§2, §10.1–2): bad credentials → 401 with APIDOC's `invalid_grant` JSON body and no
`X-Auth-Token`; a missing/unknown/expired/revoked token on any REST call → 401 with a JSON body (so
pyRofex's retry path returns a dict rather than raising); `removeToken` → 200 with an empty body.
Venue errors are HTTP 200 `{"status":"ERROR","description":…,"message":null}`; an unknown path
under `/rest/` → `Ruta invalida` (DOC).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from brokerbridge.sim.faults import hold_until_disconnected
from brokerbridge.sim.primary import risk
from brokerbridge.sim.primary.account import ACTIVE, Order, OrderError
from brokerbridge.sim.primary.catalog import MARKET_ID, SEGMENTS, PrimaryInstrument
from brokerbridge.sim.primary.exchange import PrimaryExchange
from brokerbridge.sim.primary.marketdata import MAX_DEPTH, market_data
from brokerbridge.sim.primary.order_input import (
    RawOrder,
    as_decimal,
    invalid,
    missing,
    no_access,
    parse_order,
    product,
)
from brokerbridge.sim.primary.tokens import Token
from brokerbridge.sim.primary.usage import UNKNOWN_ROUTE
from brokerbridge.venues.primary.wire_format import (
    encode_bytes,
    local_date,
    ms,
    num,
    parse_entries,
    trade_datetime,
)

log = logging.getLogger(__name__)

JSON = "application/json;charset=UTF-8"
BAD_CREDENTIALS = {"error": "invalid_grant", "error_description": "The user name or password is incorrect."}
USER_LOCKED = {"error": "invalid_grant", "error_description": "User account is locked"}
UNAUTHORIZED = {"status": "ERROR", "message": "Unauthorized", "description": "Invalid or expired token"}
HTTP_ERROR_PAGE = "<html><head><title>{status}</title></head><body><h1>{status}</h1><hr>nginx</body></html>"
REST_ORDER_NAMES = {
    "symbol": "symbol",
    "quantity": "orderQty",
    "side": "side",
    "account": "account",
    "ord_type": "ordType",
    "time_in_force": "timeInForce",
    "price": "price",
    "iceberg": "iceberg",
    "cancel_previous": "cancelPrevious",
}

Handler = Callable[["Call"], dict[str, Any]]


def ok(**payload: Any) -> dict[str, Any]:
    return {"status": "OK", **payload}


def error(description: str, message: Any = None) -> dict[str, Any]:
    return {"status": "ERROR", "description": description, "message": message}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(encode_bytes(body), status_code=status, media_type=JSON, headers=headers)


class Call:
    """One authorised REST call: its query parameters (case-insensitive) and the caller."""

    def __init__(self, request: Request, token: Token, tail: str) -> None:
        self._params = {key.lower(): value for key, value in request.query_params.items()}
        self.user = token.user
        self.tail = tail  # path after the endpoint (risk endpoints take the account there)

    def get(self, name: str) -> str | None:
        return self._params.get(name.lower())

    def need(self, name: str) -> str:
        value = self.get(name)
        if value is None or value == "":
            raise missing(name)
        return value


class PrimaryRest:
    def __init__(self, exchange: PrimaryExchange) -> None:
        self.exchange = exchange
        self._routes: dict[str, Handler] = {
            "segment/all": self._segments,
            "instruments/all": self._instruments_all,
            "instruments/details": self._instruments_details,
            "instruments/detail": self._instrument_detail,
            "instruments/byCFICode": self._by_cfi,
            "instruments/bySegment": self._by_segment,
            "marketdata/get": self._market_data,
            "data/getTrades": self._trades,
            "order/newSingleOrder": self._new_order,
            "order/replaceById": self._replace,
            "order/cancelById": self._cancel,
            "order/id": self._order_id,
            "order/allById": self._all_by_id,
            "order/byOrderId": self._by_order_id,
            "order/byExecId": self._by_exec_id,
            "order/actives": self._actives,
            "order/filleds": self._filleds,
            "order/all": self._orders_all,
            "accounts": self._accounts,
        }
        self._account_routes: dict[str, Handler] = {
            "risk/position/getPositions": self._positions,
            "risk/detailedPosition": self._detailed_position,
            "risk/accountReport": self._account_report,
        }

    # -- edges -----------------------------------------------------------------------------------------
    async def _faults(self) -> Response | None:
        faults = self.exchange.faults
        if faults.latency_ms > 0:
            await self.exchange.clock.sleep(faults.latency_ms / 1000)
        if faults.take("rest_http_errors"):
            status = faults.rest_http_status
            return Response(HTTP_ERROR_PAGE.format(status=status), status_code=status, media_type="text/html")
        return None

    async def get_token(self, request: Request) -> Response:
        if (failed := await self._faults()) is not None:
            return failed
        user, password = request.headers.get("x-username"), request.headers.get("x-password")
        if self.exchange.faults.block_user and user == self.exchange.user:
            self.exchange.refused_logins += 1
            return json_response(USER_LOCKED, status=401)
        token = self.exchange.login(user, password)
        if token is None:
            self.exchange.refused_logins += 1
            return json_response(BAD_CREDENTIALS, status=401)
        return Response(b"", status_code=200, headers={"X-Auth-Token": token.value})

    async def remove_token(self, request: Request) -> Response:
        if (failed := await self._faults()) is not None:
            return failed
        token = self.exchange.authorised(request.headers.get("x-auth-token"))
        if token is None:
            return json_response(UNAUTHORIZED, status=401)
        self.exchange.revoke(token.value)
        return Response(b"", status_code=200)

    async def handle(self, request: Request) -> Response:
        if (failed := await self._faults()) is not None:
            return failed
        token = self.exchange.authorised(request.headers.get("x-auth-token"))
        if token is None:
            self.exchange.refused_calls += 1
            return json_response(UNAUTHORIZED, status=401)
        path = request.path_params["path"].strip("/")
        handler, tail = self._route(path)
        self.exchange.usage.call(UNKNOWN_ROUTE if handler is None else path.removesuffix("/" + tail))
        if handler is None:
            return json_response({"status": "ERROR", "description": "Ruta invalida", "message": ""})
        try:
            body = handler(Call(request, token, tail))
        except OrderError as exc:
            body = error(exc.description)
        if path == "order/newSingleOrder" and self.exchange.faults.take("lose_answers"):
            await hold_until_disconnected(request.receive)
        return json_response(body)

    def _route(self, path: str) -> tuple[Handler | None, str]:
        if path in self._routes:
            return self._routes[path], ""
        for prefix, handler in self._account_routes.items():
            if path.startswith(prefix + "/"):
                return handler, path[len(prefix) + 1 :]
        return None, ""

    # -- reference data --------------------------------------------------------------------------------
    def _segments(self, call: Call) -> dict[str, Any]:
        return ok(segments=[{"marketSegmentId": s, "marketId": MARKET_ID} for s in SEGMENTS])

    def _instruments_all(self, call: Call) -> dict[str, Any]:
        rows = [
            {"instrumentId": i.instrument_id, "cficode": i.cficode} for i in self.exchange.catalog.instruments
        ]
        return ok(instruments=rows)

    def _instruments_details(self, call: Call) -> dict[str, Any]:
        return ok(instruments=[inst.detail() for inst in self.exchange.catalog.instruments])

    def _instrument_detail(self, call: Call) -> dict[str, Any]:
        inst = product(self.exchange.catalog, call.need("symbol"), call.get("marketId"))
        return ok(instrument=inst.detail())

    def _by_cfi(self, call: Call) -> dict[str, Any]:
        return ok(instruments=_flat(self.exchange.catalog.by_cfi(call.need("CFICode"))))

    def _by_segment(self, call: Call) -> dict[str, Any]:
        segment = call.need("MarketSegmentID")
        market = call.get("MarketID") or MARKET_ID
        if segment.removeprefix("U-") not in SEGMENTS or market != MARKET_ID:
            raise OrderError(f"Segment {segment}:{market} doesn't exist")
        return ok(instruments=_flat(self.exchange.catalog.by_segment(segment)))

    # -- market data -------------------------------------------------------------------------------------
    def _market_data(self, call: Call) -> dict[str, Any]:
        inst = product(self.exchange.catalog, call.need("symbol"), call.get("marketId"))
        entries, _unknown = parse_entries(call.need("entries").split(","))  # unknown codes are ignored
        raw_depth = call.get("depth") or "1"
        if not raw_depth.isdigit() or not 1 <= int(raw_depth) <= MAX_DEPTH:
            raise invalid("depth", raw_depth)
        depth = int(raw_depth)
        data = market_data(self.exchange, inst, entries, depth, empty_book=None)
        return ok(marketData=data, depth=depth, aggregated=True)

    def _trades(self, call: Call) -> dict[str, Any]:
        symbol = call.need("symbol")
        market = call.get("marketId") or MARKET_ID
        inst = product(self.exchange.catalog, symbol, MARKET_ID if market == "MERV" else market)
        date = call.get("date")
        date_from, date_to = (date, date) if date else (call.need("dateFrom"), call.need("dateTo"))
        external = (call.get("external") or "").lower() in ("1", "true")
        # BYMA history needs marketId=MERV&external=1 now; with ROFX it answers an empty list with
        # market MERV (chuchobot PR #14, pyRofex PR #36).
        if inst.byma and not (market == "MERV" and external):
            return ok(symbol=inst.symbol, market="MERV", trades=[])
        rows = []
        for trade in self.exchange.market.trades(inst.symbol):
            day = local_date(trade.time).isoformat()
            if date_from <= day <= date_to:
                rows.append(
                    {
                        "symbol": inst.symbol,
                        "servertime": ms(trade.time),
                        "size": num(trade.qty),
                        "price": num(trade.price),
                        "datetime": trade_datetime(trade.time),
                    }
                )
        return ok(symbol=inst.symbol, market=market, trades=rows)

    # -- orders ------------------------------------------------------------------------------------------
    def _check_account(self, call: Call, account: str) -> None:
        if not self.exchange.owns(call.user, account):
            raise no_access(account)

    def _new_order(self, call: Call) -> dict[str, Any]:
        raw = RawOrder(
            symbol=call.get("symbol"),
            market_id=call.get("marketId"),
            quantity=call.get("orderQty"),
            side=call.get("side"),
            account=call.get("account"),
            ord_type=call.get("ordType"),
            time_in_force=call.get("timeInForce"),
            price=call.get("price"),
            expire_date=call.get("expireDate"),
            iceberg=call.get("iceberg"),
            display_qty=call.get("displayQty"),
            cancel_previous=call.get("cancelPrevious"),
        )
        request = parse_order(self.exchange.catalog, raw, REST_ORDER_NAMES)
        self._check_account(call, request.account)
        order = self.exchange.place(request)
        return ok(order={"clientId": order.cl_ord_id, "proprietary": order.proprietary})

    def _replace(self, call: Call) -> dict[str, Any]:
        original = self.exchange.account.find(call.need("clOrdId"), call.need("proprietary"))
        self._check_account(call, original.account)
        qty = as_decimal(call.get("orderQty"), "orderQty")
        price = as_decimal(call.get("price"), "price") if call.get("price") else None
        order = self.exchange.replace(original.cl_ord_id, original.proprietary, qty, price)
        return ok(order={"clientId": order.cl_ord_id, "proprietary": order.proprietary})

    def _cancel(self, call: Call) -> dict[str, Any]:
        original = self.exchange.account.find(call.need("clOrdId"), call.need("proprietary"))
        self._check_account(call, original.account)
        request = self.exchange.cancel(original.cl_ord_id, original.proprietary)
        return ok(order={"clientId": request.cl_ord_id, "proprietary": request.proprietary})

    def _found(self, call: Call) -> Order:
        order = self.exchange.account.find(call.need("clOrdId"), call.need("proprietary"))
        self._check_account(call, order.account)
        return order

    def _order_id(self, call: Call) -> dict[str, Any]:
        return ok(order=self._found(call).reports[-1])

    def _all_by_id(self, call: Call) -> dict[str, Any]:
        # Oldest first (the DOC example's order is not conclusive; a history reads naturally so).
        return ok(orders=list(self._found(call).reports))

    def _by_order_id(self, call: Call) -> dict[str, Any]:
        order_id = call.need("orderId")
        order = self.exchange.account.by_order_id(order_id)
        if order is None or not self.exchange.owns(call.user, order.account):
            raise OrderError(f"Order {order_id} doesn't exist")
        return ok(order=order.reports[-1])

    def _by_exec_id(self, call: Call) -> dict[str, Any]:
        exec_id = call.need("execId")
        report = self.exchange.account.by_exec_id(exec_id)
        if report is None or not self.exchange.owns(call.user, report["accountId"]["id"]):
            raise OrderError(f"Execution {exec_id} doesn't exist")
        return ok(orders=[report])

    def _listed(self, call: Call, statuses: tuple[str, ...] | None) -> dict[str, Any]:
        account = call.need("accountId")
        self._check_account(call, account)
        return ok(orders=list(self.exchange.account.latest_reports(statuses)))

    def _actives(self, call: Call) -> dict[str, Any]:
        return self._listed(call, ACTIVE)

    def _filleds(self, call: Call) -> dict[str, Any]:
        return self._listed(call, ("FILLED", "PARTIALLY_FILLED"))

    def _orders_all(self, call: Call) -> dict[str, Any]:
        return self._listed(call, None)

    def _accounts(self, call: Call) -> dict[str, Any]:
        account = self.exchange.account.account_id
        numeric = int("".join(ch for ch in account if ch.isdigit()) or 0)
        return ok(accounts=[{"id": numeric, "name": account, "brokerId": 1, "status": True}])

    # -- risk --------------------------------------------------------------------------------------------
    def _risk_account(self, call: Call) -> None:
        account = call.tail
        if not account:
            raise missing("account")
        self._check_account(call, account)

    def _positions(self, call: Call) -> dict[str, Any]:
        self._risk_account(call)
        return ok(positions=risk.positions(self.exchange))

    def _detailed_position(self, call: Call) -> dict[str, Any]:
        self._risk_account(call)
        return ok(detailedPosition=risk.detailed_position(self.exchange))

    def _account_report(self, call: Call) -> dict[str, Any]:
        self._risk_account(call)
        return ok(accountData=risk.account_report(self.exchange))


def _flat(instruments: Iterable[PrimaryInstrument]) -> list[dict[str, str]]:
    return [{"marketId": MARKET_ID, "symbol": inst.symbol} for inst in instruments]


Endpoint = Callable[[Request], Awaitable[Response]]
