"""Primary's REST API at `/primary/`, served from the bridge's one upstream Primary session, so an
existing Primary client (pyRofex, a browser front end using `fetch`) works by changing its base URL.

* `POST /primary/auth/getToken` (headers `X-Username`, `X-Password`): a bridge-local user or an API
  key's name with the key as password (`check_password`; never the broker's credentials, never
  sent upstream) → 200 with a bridge access token (`bbt.…`, the user's or key's scopes) in the
  `X-Auth-Token` header. Its lifetime is `PRIMARY_TOKEN_TTL`, Primary's own 24 h: pyRofex never
  renews a token it holds (it logs in again only after a 401, and returns that call's failed
  body), so a token shorter than a trading day would break an unmodified pyRofex mid-session —
  whenever in the day it logged in.
* `GET /primary/rest/…`: the paths pyRofex and browser clients call, with Primary's shapes, status
  codes and wordings (server/primary/shapes.py). The token comes as `X-Auth-Token` (what pyRofex
  sends), `Authorization: Bearer` or the dashboard's cookie (`identify` reads them all). Scopes:
  instruments, segments, market data and trades need `market`; accounts, positions, the account
  report and order reads `account`; newSingleOrder and cancelById `trade`.

Where each answer comes from:
* instruments and segments: the catalogue the bridge loads once a day (`instruments/details`,
  kept on disk), and `segment/all` asked once per catalogue day;
* `marketdata/get` of `BI`/`OF`/`LA` at depth 1–5: the bridge's streams (a book stream at that
  depth, a ticker stream for `LA`), opened through the Bridge and answered from their latest values
  (a stream stays open for the Bridge's grace period, so a client polling every few seconds is
  answered from memory); other entries or depths are asked of Primary;
* `newSingleOrder` / `cancelById`: the Bridge's order service (`Bridge.place` / `Bridge.cancel`:
  the bridge's order rules, the journal, idempotency by client order id — `wsClOrdId` may name one);
  the ids are the upstream clOrdId (the Bridge's Primary order id) and its proprietary;
* order reads, accounts, positions, the account report, `getTrades`: forwarded to Primary on the
  bridge's session, answered with Primary's own body — which answers the same request again for
  `READ_TTL_S` (half a second), so clients polling cost Primary a bounded rate whatever their
  number; an order placed or cancelled here makes the next read ask again.

Every request is checked first (token, scope, parameters, the symbol against the catalogue, the
account against the bridge's one account): nothing reaches the upstream session for a request
Primary would refuse by its form.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar, cast

from fastapi import APIRouter, Request
from fastapi.responses import Response

from brokerbridge.bridge import Bridge
from brokerbridge.core.errors import (
    AuthenticationError,
    BrokerBridgeError,
    InvalidRequest,
    OrderRejected,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    SessionInvalid,
    TransportError,
    UnknownOrder,
    UnknownSymbol,
    UnknownVenue,
    VenueError,
)
from brokerbridge.core.events import Channel, Side
from brokerbridge.core.orders import OrderRequest, OrderType, TimeInForce, valid_client_order_id
from brokerbridge.core.rest import Request as VenueRequest
from brokerbridge.io.primary.connector import PrimaryConnector
from brokerbridge.io.primary.rest import Answered
from brokerbridge.server.auth import Principal
from brokerbridge.server.csrf import CSRF_REMEDY, csrf_refusal
from brokerbridge.server.logins import Denied, Logins, identify, password_grant
from brokerbridge.server.primary import shapes
from brokerbridge.server.primary.shapes import Refused, echo, invalid, missing, no_account, no_product
from brokerbridge.server.protocol import MAX_ID_LENGTH, MAX_NAME_LENGTH, MAX_SYMBOL_LENGTH, PRINTABLE
from brokerbridge.server.rest import RestSettings
from brokerbridge.venues.primary import DEFAULT_MARKET, VENUE
from brokerbridge.venues.primary import rest as codec
from brokerbridge.venues.primary.messages import OrderReport
from brokerbridge.venues.primary.rest_messages import (
    InstrumentDetailWire,
    InstrumentRow,
    OrderAckBody,
    Segment,
)
from brokerbridge.venues.primary.session import MAX_BOOK_DEPTH

logger = logging.getLogger(__name__)

T = TypeVar("T")

PRIMARY_TOKEN_TTL = 24 * 3600.0  # Primary's own token lifetime (see the module docstring)
READ_TTL_S = 0.5  # a read asked of Primary answers the same request again this long
MAX_READS_HELD = 10_000  # distinct reads held at once (bounded memory under a flood)
MARKET, ACCOUNT, TRADE = "market", "account", "trade"
# Entries the bridge's streams carry as Primary sent them; the others are asked of Primary.
STREAMED_ENTRIES = ("BI", "OF", "LA")
MD_ENTRIES = ("BI", "OF", "LA", "OP", "CL", "SE", "HI", "LO", "TV", "OI", "IV", "EV", "NV", "ACP", "TC")
MAX_DEPTH = 10  # Primary serves books up to 10 levels on REST; the bridge's streams up to 5
EXTERNAL_MARKET = "MERV"  # getTrades: BYMA history is asked with marketId=MERV&external=1
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PRINTABLE = re.compile(PRINTABLE)

UNAUTHORIZED_MESSAGE = "Unauthorized"
UNAUTHORIZED_TEXT = "Invalid or expired token"
BAD_CREDENTIALS = "The user name or password is incorrect."


@dataclass(frozen=True, slots=True)
class _Route:
    scope: str
    handle: Callable[[Call], Awaitable[Response]]


class Call:
    """One authorised request: its parameters (names case-insensitive, as Primary takes them), the
    path's tail (the account of the risk paths) and the upstream session."""

    def __init__(self, request: Request, tail: str, bridge: Bridge, connector: PrimaryConnector) -> None:
        self.request = request
        self.tail = tail
        self.bridge = bridge
        self.connector = connector
        self._params = {key.lower(): value for key, value in request.query_params.items()}

    def get(self, name: str, limit: int = MAX_SYMBOL_LENGTH) -> str | None:
        """The parameter's value (None when absent or empty); a value too long or with control
        characters is refused (Primary's wording, the value clipped)."""
        value = self._params.get(name.lower())
        if value is None or value == "":
            return None
        if len(value) > limit or not _PRINTABLE.match(value):
            raise invalid(name, value, f"at most {limit} printable characters")
        return value

    def need(self, name: str, limit: int = MAX_SYMBOL_LENGTH) -> str:
        value = self.get(name, limit)
        if value is None:
            raise missing(name)
        return value

    def account(self, given: str) -> str:
        """`given` if it is the bridge's Primary account (the only one it serves), else Primary's
        no-access refusal."""
        mine = self.connector.account
        if mine is None or given != mine:
            raise no_account(given)
        return mine


class PrimaryRest:
    """The routes of one app (built by `make_router`): dispatch tables and the per-day caches."""

    def __init__(self) -> None:
        self._routes: dict[str, _Route] = {
            "segment/all": _Route(MARKET, self._segments),
            "instruments/all": _Route(MARKET, self._instruments_all),
            "instruments/details": _Route(MARKET, self._instruments_details),
            "instruments/detail": _Route(MARKET, self._instrument_detail),
            "instruments/byCFICode": _Route(MARKET, self._by_cfi),
            "instruments/bySegment": _Route(MARKET, self._by_segment),
            "marketdata/get": _Route(MARKET, self._market_data),
            "data/getTrades": _Route(MARKET, self._trades),
            "order/newSingleOrder": _Route(TRADE, self._new_order),
            "order/cancelById": _Route(TRADE, self._cancel),
            "order/id": _Route(ACCOUNT, self._order_id),
            "order/allById": _Route(ACCOUNT, self._all_by_id),
            "order/byOrderId": _Route(ACCOUNT, self._by_order_id),
            "order/byExecId": _Route(ACCOUNT, self._by_exec_id),
            "order/all": _Route(ACCOUNT, self._orders("all")),
            "order/actives": _Route(ACCOUNT, self._orders("actives")),
            "order/filleds": _Route(ACCOUNT, self._orders("filleds")),
            "accounts": _Route(ACCOUNT, self._accounts),
        }
        # Risk paths take the account as the path's last part.
        self._account_routes: dict[str, _Route] = {
            "risk/position/getPositions": _Route(ACCOUNT, self._risk(codec.positions_request)),
            "risk/detailedPosition": _Route(ACCOUNT, self._risk(codec.detailed_position_request)),
            "risk/accountReport": _Route(ACCOUNT, self._risk(codec.account_report_request)),
        }
        # Lookups built from one catalogue load (the tuple of details it came with).
        self._indexed: tuple[InstrumentDetailWire, ...] | None = None
        self._by_symbol: dict[str, InstrumentDetailWire] = {}
        self._segments_of: tuple[tuple[InstrumentDetailWire, ...], Answered[Any]] | None = None
        # Reads asked of Primary, each answer served again for READ_TTL_S (bridge clock) to
        # whoever asks the same: many clients polling order/all every 2 s cost Primary at most
        # two calls a second between them, not two each.
        self._reads: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[float, Answered[Any]]] = {}

    # -- edges -----------------------------------------------------------------------------------
    async def get_token(self, request: Request) -> Response:
        state = request.app.state.server
        user = request.headers.get("x-username")
        password = request.headers.get("x-password")
        if not user or password is None:
            return shapes.respond(shapes.LoginRefused(error_description=BAD_CREDENTIALS), 401)
        granted = await password_grant(request, state.auth, state.logins, user, password)
        if isinstance(granted, Denied):
            if granted.retry_after is not None:
                refusal = shapes.LoginRefused(error="too_many_attempts", error_description=granted.message)
                return shapes.respond(refusal, 429, granted.headers)
            return shapes.respond(shapes.LoginRefused(error_description=BAD_CREDENTIALS), 401)
        logins: Logins = state.logins
        # Valid (and renewable: POST /api/tokens/renew) for Primary's own 24 h, not the bridge's
        # default renewal limit: see the module docstring.
        issued = logins.access.mint(
            granted, ttl=PRIMARY_TOKEN_TTL, renew_until=logins.now() + PRIMARY_TOKEN_TTL
        )
        logger.info(
            "primary endpoint: token %s issued to %r (scopes %s)",
            issued.id,
            granted.name,
            ",".join(sorted(issued.scopes)),
        )
        # A browser reads the header only if CORS exposes it (for an origin allowed to call).
        headers = {"X-Auth-Token": issued.token, "Access-Control-Expose-Headers": "X-Auth-Token"}
        return Response(b"", status_code=200, headers=headers)

    async def remove_token(self, request: Request) -> Response:
        """Primary's logout: the token presented is revoked (200, empty body, as Primary answers)."""
        logins: Logins = request.app.state.server.logins
        found = logins.access.verify(request.headers.get("x-auth-token") or "")
        if isinstance(found, str):
            body = shapes.Failure(message=UNAUTHORIZED_MESSAGE, description=f"{UNAUTHORIZED_TEXT}: {found}")
            return shapes.respond(body, 401)
        logins.access.revoke(found)
        return Response(b"", status_code=200)

    async def handle(self, request: Request, path: str) -> Response:
        try:
            return await self._handle(request, path.strip("/"))
        except Refused as refusal:
            return refusal.response()

    async def _handle(self, request: Request, path: str) -> Response:
        state = request.app.state.server
        principal = identify(request, state.auth, state.logins)
        _check_token(principal)
        assert isinstance(principal, Principal)
        route, tail = self._route(path)
        if route is None:
            return shapes.respond(shapes.UNKNOWN_ROUTE)
        _check_scope(principal, route.scope)
        if route.scope == TRADE:
            # Orders go by GET here (as Primary takes them): with the dashboard's cookie, a page of
            # another port of this host could make a browser send one. Cookie logins need the CSRF
            # token, as on /api (tokens and keys cannot be sent by such a page).
            if (forged := csrf_refusal(request, principal, state.logins)) is not None:
                why = f"Access Denied: {forged}: {CSRF_REMEDY}"
                raise Refused(shapes.Failure(message="Access Denied", description=why), 403)
        bridge: Bridge = request.app.state.bridge
        return await route.handle(Call(request, tail, bridge, _connector(bridge)))

    def _route(self, path: str) -> tuple[_Route | None, str]:
        if path in self._routes:
            return self._routes[path], ""
        for prefix, route in self._account_routes.items():
            if path.startswith(prefix + "/"):
                return route, path[len(prefix) + 1 :]
        return None, ""

    async def _read(self, call: Call, request: VenueRequest[T]) -> Answered[T]:
        """`request` asked of Primary, or its answer of less than `READ_TTL_S` ago."""
        clock = call.bridge.clock
        key = (request.path, request.params)
        held = self._reads.get(key)
        if held is not None and held[0] > clock.monotonic():
            return cast(Answered[T], held[1])
        answered = await _forward(call, request)
        now = clock.monotonic()
        if len(self._reads) >= MAX_READS_HELD:
            self._reads = {k: v for k, v in self._reads.items() if v[0] > now}
            if len(self._reads) >= MAX_READS_HELD:  # all fresh: a flood of distinct reads
                self._reads.clear()
        self._reads[key] = (now + READ_TTL_S, answered)
        return answered

    def _orders_changed(self) -> None:
        """An order was placed or cancelled here: the next read of orders asks Primary again."""
        self._reads.clear()

    # -- reference data ---------------------------------------------------------------------------
    async def _details(self, call: Call) -> tuple[InstrumentDetailWire, ...]:
        details = await _upstream(call.connector.instrument_details())
        if details is not self._indexed:
            self._by_symbol = {detail.instrumentId.symbol: detail for detail in details}
            self._indexed = details
        return details

    async def _instrument(self, call: Call, symbol: str, market: str | None) -> InstrumentDetailWire:
        """The detail of `symbol` on `market` (ROFX when not given), or Primary's unknown product."""
        await self._details(call)
        market = market or DEFAULT_MARKET
        detail = self._by_symbol.get(symbol)
        if detail is None or market != detail.instrumentId.marketId:
            raise no_product(symbol, market)
        return detail

    async def _segment_list(self, call: Call) -> Answered[Any]:
        """`segment/all`, asked of Primary once per catalogue day."""
        details = await self._details(call)
        if self._segments_of is None or self._segments_of[0] is not details:
            answered = await _forward(call, codec.segments_request())
            self._segments_of = (details, answered)
        return self._segments_of[1]

    async def _segments(self, call: Call) -> Response:
        return shapes.forwarded((await self._segment_list(call)).body)

    async def _instruments_all(self, call: Call) -> Response:
        details = await self._details(call)
        rows = [InstrumentRow(instrumentId=d.instrumentId, cficode=d.cficode) for d in details]
        return shapes.respond(shapes.InstrumentsAll(instruments=rows))

    async def _instruments_details(self, call: Call) -> Response:
        return shapes.respond(shapes.InstrumentsDetails(instruments=list(await self._details(call))))

    async def _instrument_detail(self, call: Call) -> Response:
        detail = await self._instrument(call, call.need("symbol"), call.get("marketId", MAX_NAME_LENGTH))
        return shapes.respond(shapes.InstrumentDetail(instrument=detail))

    async def _by_cfi(self, call: Call) -> Response:
        code = call.need("CFICode", MAX_NAME_LENGTH)
        rows = [d.instrumentId for d in await self._details(call) if d.cficode == code]
        return shapes.respond(shapes.InstrumentsFlat(instruments=rows))

    async def _by_segment(self, call: Call) -> Response:
        segment = call.need("MarketSegmentID", MAX_NAME_LENGTH)
        market = call.get("MarketID", MAX_NAME_LENGTH) or DEFAULT_MARKET
        listed: list[Segment] = (await self._segment_list(call)).value.segments
        # The unified segments (U-DDF …) list what their segment lists (primary.md §5).
        wanted = segment.removeprefix("U-")
        if not any(s.marketSegmentId == wanted and s.marketId == market for s in listed):
            raise shapes.no_segment(segment, market)
        rows = [
            d.instrumentId
            for d in await self._details(call)
            if d.segment is not None
            and d.segment.marketSegmentId == wanted
            and d.instrumentId.marketId == market
        ]
        return shapes.respond(shapes.InstrumentsFlat(instruments=rows))

    # -- market data ------------------------------------------------------------------------------
    async def _market_data(self, call: Call) -> Response:
        symbol = call.need("symbol")
        await self._instrument(call, symbol, call.get("marketId", MAX_NAME_LENGTH))
        entries = _entries(call.need("entries", 256))
        raw_depth = call.get("depth", MAX_NAME_LENGTH) or "1"
        if not raw_depth.isdigit() or not 1 <= int(raw_depth) <= MAX_DEPTH:
            raise invalid("depth", raw_depth)
        depth = int(raw_depth)
        if not entries:  # only unknown codes: Primary ignores them and answers nothing
            return shapes.respond(shapes.MarketDataAnswer(marketData=shapes.BookAndLast(), depth=depth))
        if depth <= MAX_BOOK_DEPTH and all(entry in STREAMED_ENTRIES for entry in entries):
            return shapes.respond(await _streamed_market_data(call, symbol, entries, depth))
        request = codec.market_data_request(symbol, entries, depth)
        return shapes.forwarded((await self._read(call, request)).body)

    async def _trades(self, call: Call) -> Response:
        symbol = call.need("symbol")
        market = call.get("marketId", MAX_NAME_LENGTH) or DEFAULT_MARKET
        # BYMA history is asked with marketId=MERV&external=1 (the symbol is still ROFX-listed).
        await self._instrument(call, symbol, DEFAULT_MARKET if market == EXTERNAL_MARKET else market)
        date = call.get("date", MAX_NAME_LENGTH)
        date_from = date_to = None
        if date is None:
            date_from, date_to = call.need("dateFrom", MAX_NAME_LENGTH), call.need("dateTo", MAX_NAME_LENGTH)
        for name, value in (("date", date), ("dateFrom", date_from), ("dateTo", date_to)):
            if value is not None and not _is_date(value):
                raise invalid(name, value, "a date as YYYY-MM-DD")
        external_text = (call.get("external", MAX_NAME_LENGTH) or "").lower()
        if external_text not in ("", "1", "0", "true", "false"):
            raise invalid("external", external_text)
        request = codec.trades_request(
            symbol,
            date=date,
            date_from=date_from,
            date_to=date_to,
            market=market,
            external=True if external_text in ("1", "true") else None,
        )
        return shapes.forwarded((await self._read(call, request)).body)

    # -- orders -----------------------------------------------------------------------------------
    async def _new_order(self, call: Call) -> Response:
        symbol = call.need("symbol")
        qty_text = call.need("orderQty", MAX_NAME_LENGTH)
        side_text = call.need("side", MAX_NAME_LENGTH)
        account = call.need("account", MAX_ID_LENGTH)
        await self._instrument(call, symbol, call.get("marketId", MAX_NAME_LENGTH))
        qty = _decimal(qty_text)
        if qty is None or qty <= 0:
            raise invalid("orderQty", qty_text)
        side = {"BUY": Side.BUY, "SELL": Side.SELL}.get(side_text.upper())
        if side is None:
            raise invalid("side", side_text)
        order_type = _order_type(call.get("ordType", MAX_NAME_LENGTH) or "LIMIT")
        time_in_force = _time_in_force(call.get("timeInForce", MAX_NAME_LENGTH) or "DAY")
        price_text = call.get("price", MAX_NAME_LENGTH)
        price = None
        if order_type == "limit":
            if price_text is None:
                raise missing("price")
            price = _decimal(price_text)
            if price is None or price <= 0:
                raise invalid("price", price_text)
        for name, why in (
            ("iceberg", "the bridge places no iceberg orders"),
            ("cancelPrevious", "the bridge does not cancel earlier orders with a new one: use cancelById"),
        ):
            flag = (call.get(name, MAX_NAME_LENGTH) or "false").lower()
            if flag not in ("false", "0"):
                raise invalid(name, flag, why)
        client_order_id = call.get("wsClOrdId", MAX_ID_LENGTH)
        if client_order_id is not None and not valid_client_order_id(client_order_id):
            raise invalid("wsClOrdId", client_order_id, "1 to 18 letters, digits, _ or -, or a UUID")
        call.account(account)
        order = OrderRequest(
            venue=VENUE,
            symbol=symbol,
            side=side,
            qty=qty,
            type=order_type,
            price=price,
            client_order_id=client_order_id,
            time_in_force=time_in_force,
        )
        try:
            ack = await call.bridge.place(order)
        except BrokerBridgeError as exc:
            raise _order_refusal(exc) from None
        finally:
            self._orders_changed()
        if ack.status != "accepted" or ack.order_id is None:
            raise shapes.refused(
                f"no answer from the market for order {ack.client_order_id} ({ack.reason or 'unknown'}): "
                "it may be live; it is looked for in the account's orders (rest/order/all): do not "
                "send it again under another id (the same wsClOrdId is never sent twice)",
                504,
            )
        return _ack(ack.order_id, call.connector.proprietary_of(ack.order_id))

    async def _cancel(self, call: Call) -> Response:
        cl_ord_id = call.need("clOrdId", MAX_ID_LENGTH)
        proprietary = call.need("proprietary", MAX_NAME_LENGTH)
        booked = call.connector.booked_proprietary(cl_ord_id)
        if booked is not None and proprietary != booked:  # (unknown here: Primary is asked)
            raise shapes.no_order(cl_ord_id, proprietary)
        try:
            await call.bridge.cancel(VENUE, cl_ord_id)
        except UnknownOrder:
            raise shapes.no_order(cl_ord_id, proprietary) from None
        except BrokerBridgeError as exc:
            raise _order_refusal(exc) from None
        finally:
            self._orders_changed()
        # Primary answers the cancel request's own clOrdId; the bridge names orders by their first
        # request's, which `order/id` reads as CANCELLED once the cancel is done.
        return _ack(cl_ord_id, proprietary)

    async def _order_id(self, call: Call) -> Response:
        request = codec.order_status_request(call.need("clOrdId", MAX_ID_LENGTH), call.need("proprietary"))
        answered = await self._read(call, request)
        _owned(call, [answered.value.order], request.params)
        return shapes.forwarded(answered.body)

    async def _all_by_id(self, call: Call) -> Response:
        request = codec.order_history_request(call.need("clOrdId", MAX_ID_LENGTH), call.need("proprietary"))
        answered = await self._read(call, request)
        _owned(call, answered.value.orders, request.params)
        return shapes.forwarded(answered.body)

    async def _by_order_id(self, call: Call) -> Response:
        order_id = call.need("orderId", MAX_ID_LENGTH)
        answered = await self._read(call, codec.order_by_order_id_request(order_id))
        if not _mine(call, [answered.value.order]):
            raise shapes.refused(f"Order {echo(order_id)} doesn't exist")
        return shapes.forwarded(answered.body)

    async def _by_exec_id(self, call: Call) -> Response:
        exec_id = call.need("execId", MAX_ID_LENGTH)
        answered = await self._read(call, codec.order_by_exec_id_request(exec_id))
        if not _mine(call, answered.value.orders):
            raise shapes.refused(f"Execution {echo(exec_id)} doesn't exist")
        return shapes.forwarded(answered.body)

    def _orders(self, which: str) -> Callable[[Call], Awaitable[Response]]:
        async def orders(call: Call) -> Response:
            account = call.account(call.need("accountId", MAX_ID_LENGTH))
            return shapes.forwarded((await self._read(call, codec.orders_request(account, which))).body)

        return orders

    # -- accounts and risk ------------------------------------------------------------------------
    async def _accounts(self, call: Call) -> Response:
        mine = call.connector.account
        answered = await self._read(call, codec.accounts_request())
        # The user may hold several accounts upstream; the bridge serves (and trades) one.
        rows = [row for row in answered.value.accounts if mine in (row.name, str(row.id))]
        return shapes.respond(shapes.Accounts(accounts=rows))

    def _risk(self, build: Callable[[str], VenueRequest[Any]]) -> Callable[[Call], Awaitable[Response]]:
        async def risk(call: Call) -> Response:
            if not call.tail or "/" in call.tail:
                raise missing("account")
            if len(call.tail) > MAX_ID_LENGTH or not _PRINTABLE.match(call.tail):
                raise invalid("account", call.tail)
            account = call.account(call.tail)
            return shapes.forwarded((await self._read(call, build(account))).body)

        return risk


def make_router() -> APIRouter:
    """The `/primary/` REST routes (the WebSocket at `/primary/` is server/primary/ws.py's)."""
    routes = PrimaryRest()
    router = APIRouter(prefix="/primary", include_in_schema=False)

    @router.post("/auth/getToken")
    async def get_token(request: Request) -> Response:
        return await routes.get_token(request)

    @router.api_route("/auth/removeToken", methods=["GET", "POST"])
    async def remove_token(request: Request) -> Response:
        return await routes.remove_token(request)

    @router.api_route("/rest/{path:path}", methods=["GET", "POST"])
    async def rest(request: Request, path: str) -> Response:
        return await routes.handle(request, path)

    return router


# -- checks --------------------------------------------------------------------------------------
def _check_token(principal: Principal | Denied) -> None:
    """A request needs a valid credential (Primary has no anonymous calls): 401 with Primary's
    JSON body otherwise (429 with Retry-After while the address is locked out)."""
    if isinstance(principal, Denied):
        body = shapes.Failure(
            message=UNAUTHORIZED_MESSAGE if principal.retry_after is None else "Too Many Requests",
            description=f"{UNAUTHORIZED_TEXT}: {principal.message}",
        )
        raise Refused(body, principal.status, principal.headers)
    if not principal.authenticated:
        note = f" ({principal.note})" if principal.note else ""
        body = shapes.Failure(
            message=UNAUTHORIZED_MESSAGE,
            description=f"{UNAUTHORIZED_TEXT}: send X-Auth-Token from POST /primary/auth/getToken{note}",
        )
        raise Refused(body, 401)


def _check_scope(principal: Principal, scope: str) -> None:
    if principal.allows(scope):
        return
    who = f"{principal.name!r}" if principal.name else "this session"
    body = shapes.Failure(
        message="Access Denied",
        description=f"Access Denied: the token of {who} lacks the {scope!r} scope; log in as a user "
        f"or API key that has it ([server.users.<name>] / [server.keys.<name>] scopes)",
    )
    raise Refused(body, 403)


def _connector(bridge: Bridge) -> PrimaryConnector:
    try:
        connector = bridge.connector(VENUE)
    except UnknownVenue:
        raise shapes.refused("this bridge does not run Primary (see [server] venues)", 503) from None
    if not isinstance(connector, PrimaryConnector):  # pragma: no cover - the Bridge builds this one
        raise shapes.refused("this bridge's Primary connector cannot serve the Primary endpoint", 503)
    return connector


def _entries(text: str) -> list[str]:
    """Known entry codes in request order, no repeats (unknown ones are ignored, as Primary does)."""
    known: list[str] = []
    for value in text.split(","):
        code = value.strip().upper()
        if code in MD_ENTRIES and code not in known:
            known.append(code)
    return known


def _is_date(text: str) -> bool:
    if not _DATE.match(text):
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _order_type(text: str) -> OrderType:
    match text.upper():
        case "LIMIT":
            return "limit"
        case "MARKET":
            return "market"
    raise invalid("ordType", text, "the bridge places LIMIT and MARKET orders")


def _time_in_force(text: str) -> TimeInForce:
    match text.upper():
        case "DAY":
            return "day"
        case "IOC":
            return "ioc"
        case "FOK":
            return "fok"
    why = "the bridge places DAY, IOC and FOK orders (GTD needs an expiry date it has no field for)"
    raise invalid("timeInForce", text, why)


def _ack(order_id: str, proprietary: str) -> Response:
    return shapes.respond(shapes.OrderAck(order=OrderAckBody(clientId=order_id, proprietary=proprietary)))


def _mine(call: Call, reports: list[OrderReport]) -> bool:
    mine = call.connector.account
    return bool(reports) and all(
        r.accountId is not None and mine is not None and str(r.accountId.id) == mine for r in reports
    )


def _owned(call: Call, reports: list[OrderReport], params: tuple[tuple[str, str], ...]) -> None:
    """An order of another account of the user is, for this bridge, an order that does not exist."""
    if not _mine(call, reports):
        named = dict(params)
        raise shapes.no_order(named.get("clOrdId", ""), named.get("proprietary", ""))


async def _streamed_market_data(
    call: Call, symbol: str, entries: list[str], depth: int
) -> shapes.MarketDataAnswer:
    """`BI`/`OF`/`LA` from the bridge's streams: a book stream at `depth`, a ticker stream (it
    carries `LA`), each opened through the Bridge if need be and read at its latest values."""
    settings: RestSettings = getattr(call.request.app.state, "rest_settings", None) or RestSettings()
    bridge = call.bridge
    book = None
    values: dict[str, Any] = {}
    try:
        if "BI" in entries or "OF" in entries:
            sub = bridge.subscription(VENUE, Channel.BOOK, symbol, depth=depth)
            book = (await bridge.market_snapshot(sub, wait_s=settings.snapshot_wait_s)).book
        if "LA" in entries:
            sub = bridge.subscription(VENUE, Channel.TICKER, symbol)
            await bridge.market_snapshot(sub, wait_s=settings.snapshot_wait_s)
    except UnknownSymbol:
        raise no_product(symbol, DEFAULT_MARKET) from None
    except BrokerBridgeError as exc:
        raise _unavailable(exc) from None
    if book is not None:
        for entry, levels in (("BI", book.bids), ("OF", book.asks)):
            if entry in entries:
                values[entry] = [shapes.PriceSize(level.price, level.qty) for level in levels] or None
    if "LA" in entries:
        last = call.connector.last_trade(symbol)
        values["LA"] = (
            None
            if last is None or last.price is None
            else shapes.LastTrade(last.price, last.size, None if last.date is None else int(last.date))
        )
    return shapes.MarketDataAnswer(marketData=shapes.BookAndLast(**values), depth=depth)


# -- upstream ------------------------------------------------------------------------------------
async def _upstream(awaitable: Awaitable[T]) -> T:
    try:
        return await awaitable
    except BrokerBridgeError as exc:
        raise _unavailable(exc) from None


async def _forward(call: Call, request: VenueRequest[T]) -> Answered[T]:
    """`request` asked of Primary on the bridge's session; Primary's refusal answered in its words."""
    try:
        return await call.connector.rest_answer(request)
    except (AuthenticationError, SessionInvalid, RateLimited, ServiceUnavailable, TransportError) as exc:
        # the bridge's own session failing (not the request): Primary's words would mislead
        raise _unavailable(exc) from None
    except VenueError as exc:  # Primary's `{"status":"ERROR"}`: its own words back
        raise shapes.refused(exc.code or exc.message) from None
    except BrokerBridgeError as exc:
        raise _unavailable(exc) from None


def _unavailable(exc: BrokerBridgeError) -> Refused:
    """The bridge cannot answer now (Primary unreachable, its session refused, rate-limited)."""
    status = 429 if isinstance(exc, RateLimited) else 504 if isinstance(exc, TransportError) else 503
    return shapes.refused(f"the bridge cannot reach Primary now: {exc.message} ({exc.remedy})", status)


def _order_refusal(exc: BrokerBridgeError) -> Refused:
    """An order the bridge or Primary refused, in Primary's envelope with the bridge's words (the
    rule broken, the venue's reason)."""
    if isinstance(exc, OrderRejected | InvalidRequest | PermissionDenied | UnknownSymbol | UnknownOrder):
        return shapes.refused(f"{exc.message} ({exc.remedy})" if exc.remedy else exc.message)
    return _unavailable(exc)
