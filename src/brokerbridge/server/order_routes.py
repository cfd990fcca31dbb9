"""The order routes under `/api/`: place, cancel, amend, open orders, fills (paged, or CSV).

    POST   /api/orders                       OrderRequest → OrderAck: 200 accepted, 202 unknown
    DELETE /api/orders/{venue}/{order_id}    → CancelAck
    PATCH  /api/orders/{venue}/{order_id}    {"qty"?, "price"?} → OrderAck (200 / 202)
    GET    /api/orders/{venue}               open orders (account scope)
    GET    /api/fills/{venue}?after=&limit=  FillsPage from the journal (account scope)
    GET    /api/fills/{venue}?format=csv     every fill, CSV with a header row

The bodies are core/orders.py's Structs, the same `Bridge.place/cancel/amend` returns and the `/ws`
ops answer with (server/order_desk.py checks both ways in alike). An ack `unknown` (the venue did
not answer: the order may be live, its outcome follows on `executions`) is 202 Accepted: the
request was taken, its result is not known yet — a client retries with the same
`client_order_id`, which never makes a second order.

Placing, canceling and amending need the `trade` scope; with the browser's login cookie also the
CSRF checks of server/csrf.py (Origin, `X-CSRF-Token`). Errors are the typed body with the code
of core/errors.py `WIRE_ERRORS` and its status (order_refused 422 with its `rule`,
order_rejected 422, order_conflict 409, unknown_order 404, not_authorized 401/403, …); a venue that
could not be reached for a cancel or an amend is 503 `unavailable` (send it again).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Literal

import msgspec
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from brokerbridge.bridge import Bridge
from brokerbridge.client import models
from brokerbridge.core.errors import (
    BrokerBridgeError,
    OrderRefused,
    TransportError,
    wire_error_of,
)
from brokerbridge.core.events import Fill
from brokerbridge.core.orders import AmendRequest, CancelAck, FillsPage, OrderAck, OrderRequest
from brokerbridge.server.csrf import CSRF_REMEDY, csrf_refusal
from brokerbridge.server.logins import Denied, identify
from brokerbridge.server.order_desk import OrderDesk
from brokerbridge.server.protocol import MAX_ID_LENGTH, MAX_NAME_LENGTH, PRINTABLE
from brokerbridge.server.rest import NO_STORE, JsonBody, refusal, refusal_of
from brokerbridge.server.rest_models import OpenApiModels

MAX_PAGE = 5000  # fills per page at most
CSV_PAGE = 1000  # fills read from the journal per step of a CSV download
CSV_COLUMNS = (
    "ts",
    "venue",
    "symbol",
    "side",
    "price",
    "qty",
    "cost",
    "fee",
    "fee_asset",
    "order_id",
    "client_order_id",
    "exec_id",
    "trade_id",
    "liquidity",
    "order_status",
)

_VENUE = Path(max_length=MAX_NAME_LENGTH, pattern=PRINTABLE, description="kraken or primary")
_ORDER_ID = Path(
    max_length=MAX_ID_LENGTH, pattern=PRINTABLE, description="the venue's order id (the ack's order_id)"
)


def order_error(exc: BrokerBridgeError) -> JsonBody:
    """`exc` as the typed error body, with the status `WIRE_ERRORS` gives its class; a venue that
    did not answer is 503 `unavailable` (retryable), anything else the table does not name 400."""
    wire = wire_error_of(exc)
    if wire is not None:
        status, code = wire.http_status, wire.code
    elif isinstance(exc, TransportError):
        status, code = 503, "unavailable"
    else:
        status, code = 400, "invalid_request"
    rule = exc.rule if isinstance(exc, OrderRefused) else ""
    body = models.ErrorResponse(
        error=models.ErrorDetail(code=code, message=exc.message, remedy=exc.remedy, rule=rule)
    )
    return JsonBody(body, status_code=status, headers=NO_STORE)


def _mistake(code: str, message: str, remedy: str) -> JsonBody:
    body = models.ErrorResponse(error=models.ErrorDetail(code=code, message=message, remedy=remedy))
    return JsonBody(body, status_code=400, headers=NO_STORE)


def _trader(request: Request) -> JsonBody | None:
    """None when the caller may trade: the `trade` scope, and — signed in by the browser's cookie —
    a request that passes the CSRF checks (server/csrf.py)."""
    state = request.app.state.server
    principal = identify(request, state.auth, state.logins)
    if (refused := refusal_of(principal, "trade")) is not None:
        return refused
    assert not isinstance(principal, Denied)  # refusal_of answered it
    why = csrf_refusal(request, principal, state.logins)
    if why is None:
        return None
    body = models.ErrorResponse(
        error=models.ErrorDetail(
            code="not_authorized", message=f"order refused as possibly cross-site: {why}", remedy=CSRF_REMEDY
        )
    )
    return JsonBody(body, status_code=403, headers=NO_STORE)


def _decoded(body: bytes, kind: type[Any], example: str) -> Any:
    """The body as `kind`, or the typed 400 saying what is wrong with it."""
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        return _mistake("invalid_request", f"invalid body: {str(exc)[:200]}", f"send JSON like {example}")
    except msgspec.DecodeError as exc:
        return _mistake("malformed", f"the body is not JSON: {str(exc)[:200]}", f"send JSON like {example}")


def _ack(ack: OrderAck) -> JsonBody:
    return JsonBody(ack, status_code=200 if ack.status == "accepted" else 202, headers=NO_STORE)


def _desk(request: Request) -> OrderDesk:
    desk: OrderDesk = request.app.state.server.orders
    return desk


def _bridge(request: Request) -> Bridge:
    bridge: Bridge = request.app.state.bridge
    return bridge


PLACE_EXAMPLE = '{"venue": "kraken", "symbol": "BTC/USD", "side": "buy", "qty": "0.01", "price": "30000"}'
AMEND_EXAMPLE = '{"qty": "0.02"} or {"price": "30100"}'


def _request_body(schemas: OpenApiModels, struct: type) -> dict[str, Any]:
    """`openapi_extra` documenting a JSON body of type `struct` (the route reads the raw body with
    msgspec: Decimals exact, unknown fields refused)."""
    schema = schemas.of(struct).model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)  # its nested types are components already (the responses name them)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def fills_csv(bridge: Bridge, venue: str) -> Iterator[str]:
    """Every journaled fill of `venue`, oldest first, as CSV lines (a header row first), read from
    the journal a page at a time. Amounts are written as the venue sent them (their digits)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    after: str | None = None
    while True:
        yield out.getvalue()
        out.seek(0)
        out.truncate()
        page = bridge.fills_page(venue, after=after, limit=CSV_PAGE)
        for fill in page.fills:
            writer.writerow(_csv_row(venue, fill))
        if page.next is None:
            yield out.getvalue()
            return
        after = page.next


def _csv_row(venue: str, fill: Fill) -> list[str]:
    def text(value: Decimal | str | float | None) -> str:
        if value is None:
            return ""
        return str(value) if not isinstance(value, float) else repr(value)

    return [
        text(fill.ts),
        venue,
        fill.symbol,
        fill.side.value,
        text(fill.price),
        text(fill.qty),
        text(fill.cost),
        text(fill.fee),
        text(fill.fee_asset),
        fill.order_id,
        text(fill.client_order_id),
        fill.exec_id,
        text(fill.trade_id),
        text(fill.liquidity),
        text(fill.order_status),
    ]


def make_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["orders"])
    schemas = OpenApiModels()
    ok = schemas.responses

    def acked(kind: type) -> dict[int | str, dict[str, Any]]:
        """200 with `kind`; 202 (an `unknown` ack) for place and amend; the typed errors."""
        out = ok(kind, 400, 401, 403, 404, 409, 422, 429, 503)
        if kind is OrderAck:
            out[202] = {"model": schemas.of(OrderAck), "description": "the venue did not answer: unknown"}
        return out

    @router.post(
        "/orders",
        summary="Place an order (trade scope): 200 accepted, 202 unknown (the venue did not answer)",
        responses=acked(OrderAck),
        openapi_extra=_request_body(schemas, OrderRequest),
    )
    async def place(request: Request) -> Response:
        if (refused := _trader(request)) is not None:
            return refused
        order = _decoded(await request.body(), OrderRequest, PLACE_EXAMPLE)
        if isinstance(order, Response):
            return order
        try:
            return _ack(await _desk(request).place(order))
        except BrokerBridgeError as exc:
            return order_error(exc)

    @router.delete(
        "/orders/{venue}/{order_id}",
        summary="Cancel an order by the venue's id (trade scope)",
        responses=acked(CancelAck),
    )
    async def cancel(request: Request, venue: str = _VENUE, order_id: str = _ORDER_ID) -> Response:
        if (refused := _trader(request)) is not None:
            return refused
        try:
            answer = await _desk(request).cancel(venue, order_id)
        except BrokerBridgeError as exc:
            return order_error(exc)
        return JsonBody(answer, headers=NO_STORE)

    @router.patch(
        "/orders/{venue}/{order_id}",
        summary="Amend an open order's qty and/or price (trade scope; where the venue can)",
        responses=acked(OrderAck),
        openapi_extra=_request_body(schemas, models.AmendBody),
    )
    async def amend(request: Request, venue: str = _VENUE, order_id: str = _ORDER_ID) -> Response:
        if (refused := _trader(request)) is not None:
            return refused
        body = _decoded(await request.body(), models.AmendBody, AMEND_EXAMPLE)
        if isinstance(body, Response):
            return body
        change = AmendRequest(
            venue=venue,
            order_id=order_id,
            client_order_id=body.client_order_id,
            qty=body.qty,
            price=body.price,
        )
        try:
            return _ack(await _desk(request).amend(change))
        except BrokerBridgeError as exc:
            return order_error(exc)

    @router.get(
        "/orders/{venue}",
        summary="Orders believed open",
        responses=ok(models.OrdersResponse, 400, 401, 403, 404, 429),
    )
    async def orders(request: Request, venue: str = _VENUE) -> Response:
        if (refused := refusal(request, "account")) is not None:
            return refused
        try:
            held = _bridge(request).open_orders(venue)
        except BrokerBridgeError as exc:
            return order_error(exc)
        return JsonBody(models.OrdersResponse(venue=venue, orders=held), headers=NO_STORE)

    @router.get(
        "/fills/{venue}",
        summary="Journaled fills, oldest first, a page at a time (next: the cursor of the next "
        "page); ?format=csv: every fill as CSV",
        responses=ok(FillsPage, 400, 401, 403, 404, 429, 503)
        | {200: {"model": schemas.of(FillsPage), "content": {"text/csv": {}}}},
    )
    async def fills(
        request: Request,
        venue: str = _VENUE,
        after: str | None = Query(
            None, max_length=200, pattern=PRINTABLE, description="a page's `next`: the page after it"
        ),
        limit: int = Query(500, ge=1, le=MAX_PAGE, description="fills per page"),
        output: Literal["json", "csv"] = Query(
            "json", alias="format", description="csv: every fill, one row each (after and limit unused)"
        ),
    ) -> Response:
        if (refused := refusal(request, "account")) is not None:
            return refused
        bridge = _bridge(request)
        try:
            page = bridge.fills_page(venue, after=after, limit=CSV_PAGE if output == "csv" else limit)
        except BrokerBridgeError as exc:  # an unknown venue, a cursor not ours, no journal
            return order_error(exc)
        if output == "json":
            return JsonBody(page, headers=NO_STORE)
        filename = f"brokerbridge-fills-{venue}.csv"
        return StreamingResponse(
            fills_csv(bridge, venue),
            media_type="text/csv; charset=utf-8",
            headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{filename}"'},
        )

    return router
