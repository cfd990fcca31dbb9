"""Primary REST codec, sans I/O: typed request builders, parse responses (primary.md §2, §3).

A builder (`orders_request(account)`, `market_data_request(symbol)`, …) returns a `Request[T]`
(core/rest.py) naming the endpoint, its fields and `T`, the type the answer decodes to. The I/O
edge puts it on the wire with `wire` (`PrimaryRequest.target` appended to the environment's REST
base, which ends with "/") plus the `X-Auth-Token` header, and hands status, headers and body to
`parse_answer`, which returns a `T`. Primary answers errors with HTTP 200 and
`{"status":"ERROR",…}`; those are mapped by `errors.py`. HTTP 401/403 means the token is no
longer valid → `SessionInvalid` (retryable: log in again, retry once).

Symbols are URL-encoded properly (`DLR/DIC23` → `DLR%2FDIC23`, spaces → `%20`); Primary accepts
that (other official clients send it so) as well as pyRofex's raw form.

Secrets: the password only enters `login_request`'s headers; `PrimaryRequest.__repr__` masks them
and the token, and no error message is built from request headers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar, cast
from urllib.parse import quote, urlencode

import msgspec

from brokerbridge.core.errors import (
    AuthenticationError,
    ProtocolError,
    RateLimited,
    SessionInvalid,
    TransportError,
    VenueError,
)
from brokerbridge.core.numbers import first_insane
from brokerbridge.core.rest import Request
from brokerbridge.core.secret import Secret
from brokerbridge.venues.primary import DEFAULT_MARKET, VENUE
from brokerbridge.venues.primary.errors import error_from_primary, session_expired
from brokerbridge.venues.primary.messages import MD_ENTRIES, check_market_data
from brokerbridge.venues.primary.rest_messages import (
    AccountReportResponse,
    AccountsResponse,
    DetailedPositionResponse,
    InstrumentDetailResponse,
    InstrumentsAllResponse,
    InstrumentsDetailsResponse,
    InstrumentsFlatResponse,
    MarketDataResponse,
    OrderAckResponse,
    OrderResponse,
    OrdersResponse,
    PositionsResponse,
    SegmentsResponse,
    TradesResponse,
)

T = TypeVar("T")
TOKEN_HEADER = "X-Auth-Token"
# Primary's order entry is GETs that act: one the connection dropped under may have been carried
# out, so the HTTP client never sends it again by itself (a second newSingleOrder is a second order).
ACTING_ENDPOINTS = frozenset({"rest/order/newSingleOrder", "rest/order/replaceById", "rest/order/cancelById"})
_MASKED_HEADERS = frozenset({"x-password", "x-auth-token"})


@dataclass(frozen=True, slots=True)
class PrimaryRequest:
    """A request as it goes on the wire (with its headers: the login's credentials, the token)."""

    method: str  # HTTP verb
    path: str  # no leading slash: "rest/segment/all"
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    endpoint: str = ""  # the key `parse_response` decodes with (path without the account part)

    @property
    def target(self) -> str:
        """Path plus query string, to append to the REST base URL."""
        return f"{self.path}?{self.query}" if self.query else self.path

    @property
    def acts(self) -> bool:
        """An order entry call (`ACTING_ENDPOINTS`): never resent by the transport."""
        return self.endpoint in ACTING_ENDPOINTS

    def with_token(self, token: str | Secret) -> PrimaryRequest:
        value = token.reveal() if isinstance(token, Secret) else token
        return PrimaryRequest(
            self.method, self.path, self.query, {**self.headers, TOKEN_HEADER: value}, self.endpoint
        )

    def __repr__(self) -> str:
        headers = {k: ("***" if k.lower() in _MASKED_HEADERS else v) for k, v in self.headers.items()}
        return f"PrimaryRequest({self.method} {self.target}, headers={headers})"


# ---------------------------------------------------------------- builders

ParamValue = str | int | Decimal | bool | None


def _text(value: str | int | Decimal | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _get(
    path: str, answer: type[T], params: Sequence[tuple[str, ParamValue]] = (), endpoint: str | None = None
) -> Request[T]:
    fields = tuple((k, _text(v)) for k, v in params if v is not None)
    return Request(endpoint or path, "GET", path, answer, fields)


def wire(request: Request[Any]) -> PrimaryRequest:
    """`request` as it goes on the wire, without the token (`with_token` adds it)."""
    return PrimaryRequest(
        request.verb, request.path, urlencode(request.params, quote_via=quote), {}, request.name
    )


def login_request(user: str, password: str | Secret) -> PrimaryRequest:
    """`POST auth/getToken` with `X-Username` / `X-Password`; the token comes back as a header."""
    secret = password.reveal() if isinstance(password, Secret) else password
    return PrimaryRequest(
        "POST", "auth/getToken", "", {"X-Username": user, "X-Password": secret}, "auth/getToken"
    )


def segments_request() -> Request[SegmentsResponse]:
    return _get("rest/segment/all", SegmentsResponse)


def instruments_all_request() -> Request[InstrumentsAllResponse]:
    return _get("rest/instruments/all", InstrumentsAllResponse)


def instruments_details_request() -> Request[InstrumentsDetailsResponse]:
    return _get("rest/instruments/details", InstrumentsDetailsResponse)


def instrument_detail_request(symbol: str, market: str = DEFAULT_MARKET) -> Request[InstrumentDetailResponse]:
    return _get(
        "rest/instruments/detail", InstrumentDetailResponse, [("symbol", symbol), ("marketId", market)]
    )


def instruments_by_cfi_request(cfi_code: str) -> Request[InstrumentsFlatResponse]:
    return _get("rest/instruments/byCFICode", InstrumentsFlatResponse, [("CFICode", cfi_code)])


def instruments_by_segment_request(
    segment: str, market: str = DEFAULT_MARKET
) -> Request[InstrumentsFlatResponse]:
    return _get(
        "rest/instruments/bySegment",
        InstrumentsFlatResponse,
        [("MarketSegmentID", segment), ("MarketID", market)],
    )


def market_data_request(
    symbol: str, entries: Iterable[str] = MD_ENTRIES, depth: int = 1, market: str = DEFAULT_MARKET
) -> Request[MarketDataResponse]:
    wanted = list(entries)
    unknown = [e for e in wanted if e not in MD_ENTRIES]
    if unknown or not wanted:
        raise ValueError(f"market data entries must be among {', '.join(MD_ENTRIES)}; got {wanted}")
    return _get(
        "rest/marketdata/get",
        MarketDataResponse,
        [("marketId", market), ("symbol", symbol), ("entries", ",".join(wanted)), ("depth", depth)],
    )


def trades_request(
    symbol: str,
    *,
    date: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    market: str = DEFAULT_MARKET,
    external: bool | None = None,
    environment: str | None = None,
) -> Request[TradesResponse]:
    """`data/getTrades`: one `date` or `date_from`+`date_to` (YYYY-MM-DD)."""
    if (date is None) == (date_from is None or date_to is None):
        raise ValueError("give either date or both date_from and date_to")
    return _get(
        "rest/data/getTrades",
        TradesResponse,
        [
            ("marketId", market),
            ("symbol", symbol),
            ("date", date),
            ("dateFrom", date_from),
            ("dateTo", date_to),
            ("external", external),
            ("environment", environment),
        ],
    )


def new_order_request(
    *,
    symbol: str,
    side: str,
    quantity: Decimal | int,
    account: str,
    order_type: str = "LIMIT",
    time_in_force: str = "DAY",
    price: Decimal | None = None,
    market: str = DEFAULT_MARKET,
    cancel_previous: bool = False,
    expire_date: str | None = None,
    display_quantity: Decimal | int | None = None,
) -> Request[OrderAckResponse]:
    order_type = order_type.upper()
    if order_type == "LIMIT" and price is None:
        raise ValueError("a LIMIT order needs a price")
    params: list[tuple[str, ParamValue]] = [
        ("marketId", market),
        ("symbol", symbol),
        ("orderQty", Decimal(quantity)),
        ("ordType", order_type),
        ("side", side.upper()),
        ("timeInForce", time_in_force.upper()),
        ("account", account),
        ("cancelPrevious", cancel_previous),
        ("price", price if order_type != "MARKET" else None),
        ("expireDate", expire_date),
    ]
    if display_quantity is not None:
        params += [("iceberg", True), ("displayQty", Decimal(display_quantity))]
    return _get("rest/order/newSingleOrder", OrderAckResponse, params)


def replace_order_request(
    client_order_id: str, proprietary: str, *, quantity: Decimal | int, price: Decimal
) -> Request[OrderAckResponse]:
    return _get(
        "rest/order/replaceById",
        OrderAckResponse,
        [
            ("clOrdId", client_order_id),
            ("proprietary", proprietary),
            ("orderQty", Decimal(quantity)),
            ("price", price),
        ],
    )


def cancel_order_request(client_order_id: str, proprietary: str) -> Request[OrderAckResponse]:
    return _get(
        "rest/order/cancelById",
        OrderAckResponse,
        [("clOrdId", client_order_id), ("proprietary", proprietary)],
    )


def order_status_request(client_order_id: str, proprietary: str) -> Request[OrderResponse]:
    return _get("rest/order/id", OrderResponse, [("clOrdId", client_order_id), ("proprietary", proprietary)])


def order_history_request(client_order_id: str, proprietary: str) -> Request[OrdersResponse]:
    return _get(
        "rest/order/allById", OrdersResponse, [("clOrdId", client_order_id), ("proprietary", proprietary)]
    )


def order_by_order_id_request(order_id: str) -> Request[OrderResponse]:
    return _get("rest/order/byOrderId", OrderResponse, [("orderId", order_id)])


def order_by_exec_id_request(exec_id: str) -> Request[OrdersResponse]:
    return _get("rest/order/byExecId", OrdersResponse, [("execId", exec_id)])


def orders_request(account: str, which: str = "all") -> Request[OrdersResponse]:
    """`order/all` (latest state per request), `actives` or `filleds` for an account."""
    if which not in ("all", "actives", "filleds"):
        raise ValueError("which must be all, actives or filleds")
    return _get(f"rest/order/{which}", OrdersResponse, [("accountId", account)])


def accounts_request() -> Request[AccountsResponse]:
    return _get("rest/accounts", AccountsResponse)


def _account_path(prefix: str, answer: type[T], account: str) -> Request[T]:
    if not account:
        raise ValueError("account is required")
    return _get(f"{prefix}/{quote(account, safe='')}", answer, endpoint=prefix)


def positions_request(account: str) -> Request[PositionsResponse]:
    return _account_path("rest/risk/position/getPositions", PositionsResponse, account)


def detailed_position_request(account: str) -> Request[DetailedPositionResponse]:
    return _account_path("rest/risk/detailedPosition", DetailedPositionResponse, account)


def account_report_request(account: str) -> Request[AccountReportResponse]:
    return _account_path("rest/risk/accountReport", AccountReportResponse, account)


# ---------------------------------------------------------------- parsing

RESPONSE_TYPES: dict[str, type[Any]] = {
    "rest/segment/all": SegmentsResponse,
    "rest/instruments/all": InstrumentsAllResponse,
    "rest/instruments/details": InstrumentsDetailsResponse,
    "rest/instruments/detail": InstrumentDetailResponse,
    "rest/instruments/byCFICode": InstrumentsFlatResponse,
    "rest/instruments/bySegment": InstrumentsFlatResponse,
    "rest/marketdata/get": MarketDataResponse,
    "rest/data/getTrades": TradesResponse,
    "rest/order/newSingleOrder": OrderAckResponse,
    "rest/order/replaceById": OrderAckResponse,
    "rest/order/cancelById": OrderAckResponse,
    "rest/order/id": OrderResponse,
    "rest/order/byOrderId": OrderResponse,
    "rest/order/allById": OrdersResponse,
    "rest/order/byExecId": OrdersResponse,
    "rest/order/actives": OrdersResponse,
    "rest/order/filleds": OrdersResponse,
    "rest/order/all": OrdersResponse,
    "rest/accounts": AccountsResponse,
    "rest/risk/position/getPositions": PositionsResponse,
    "rest/risk/detailedPosition": DetailedPositionResponse,
    "rest/risk/accountReport": AccountReportResponse,
}
_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {
    kind: msgspec.json.Decoder(kind) for kind in RESPONSE_TYPES.values()
}


class _Envelope(msgspec.Struct):
    status: str | None = None
    description: str | None = None
    message: str | None = None


_envelope_decoder = msgspec.json.Decoder(_Envelope)


def endpoint_of(path: str) -> str:
    """The `RESPONSE_TYPES` key for a request path (`/rest/risk/accountReport/REM1` → prefix)."""
    clean = path.split("?", 1)[0].lstrip("/")
    if clean in RESPONSE_TYPES:
        return clean
    head, _, _ = clean.rpartition("/")
    if head in RESPONSE_TYPES and head.startswith("rest/risk/"):
        return head
    return clean


def parse_answer(request: Request[T], status: int, headers: Mapping[str, str] | None, body: bytes | str) -> T:
    """The body of the response to `request`, as the type the request names.

    Raises as `parse_response` does.
    """
    _check(request.name, status, body)
    return cast(T, _decode(request.name, request.answer, body))


def parse_response(
    request: Request[Any] | PrimaryRequest | str,
    status: int,
    headers: Mapping[str, str] | None,
    body: bytes | str,
) -> Any:
    """The typed body of a Primary REST response, or the mapped error raised.

    `request` is the request sent (or its path). Raises: `SessionInvalid` (retryable) for
    HTTP 401/403 — whatever the body says; `RateLimited` for 429; `TransportError` for other
    non-2xx statuses and non-JSON bodies (a proxy page, the old login page); the mapped
    `VenueError` for `{"status":"ERROR"}`; `ProtocolError` for JSON in a shape we do not know.
    """
    if isinstance(request, Request):
        return parse_answer(request, status, headers, body)
    path = request.endpoint if isinstance(request, PrimaryRequest) else endpoint_of(request)
    _check(path, status, body)
    answer = RESPONSE_TYPES.get(path)
    if answer is None:
        raise ValueError(f"no response type for Primary REST path {path!r}")
    return _decode(path, answer, body)


def _check(path: str, status: int, body: bytes | str) -> None:
    """Raise the error a response carries: its status, a login page, `{"status":"ERROR"}`."""
    if status in (401, 403):
        raise session_expired(status)
    if status == 429:
        raise RateLimited(f"{VENUE} REST {path}: HTTP 429", venue=VENUE, code="HTTP 429")
    if not 200 <= status < 300:
        raise TransportError(f"{VENUE} REST {path}: HTTP {status}", retryable=status >= 500 or status == 408)
    marker = b"j_spring_security_check" if isinstance(body, bytes) else "j_spring_security_check"
    if marker in body:  # type: ignore[operator]
        # The old stack answers an unauthenticated call with its HTML login page (jsRofex checks this).
        raise session_expired(status)
    try:
        envelope = _envelope_decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        raise TransportError(f"{VENUE} REST {path}: response is not a JSON object (proxy page?)") from None
    if envelope.status is not None and envelope.status.upper() == "ERROR":
        raise error_from_primary(envelope.description, envelope.message)
    if envelope.status is None or envelope.status.upper() != "OK":
        raise ProtocolError(f"{VENUE} REST {path}: status {envelope.status!r} is neither OK nor ERROR")


def _decode(path: str, answer: type[Any], body: bytes | str) -> Any:
    decoder = _decoders.get(answer)
    if decoder is None:
        raise ValueError(f"no decoder for Primary REST {path} answers of type {answer!r}")
    try:
        response = decoder.decode(body)
        if isinstance(response, MarketDataResponse):
            check_market_data(response.marketData)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ProtocolError(f"{VENUE} REST {path}: unexpected response shape ({exc})") from None
    except ValueError as exc:  # a date out of range
        raise ProtocolError(f"{VENUE} REST {path}: {exc}") from None
    if (where := first_insane(response)) is not None:  # "NaN" / "1e999999" amounts
        raise ProtocolError(f"{VENUE} REST {path}: {where} is not a finite number of sane size")
    return response


ERROR_TEXT_LIMIT = 200  # characters of a venue's error text carried into our messages


def error_text(body: bytes, *, mask: Iterable[str] = ()) -> str:
    """The venue's words in a JSON error body (`error_description`, `description`, `message` or
    `error`, e.g. "User account is locked"), else the body's start — printable characters only, at
    most `ERROR_TEXT_LIMIT`, every string of `mask` (the password) replaced by `***`."""
    try:
        data = msgspec.json.decode(body or b"{}")
    except (msgspec.DecodeError, RecursionError):
        # Masked before it is cut, so no cut can leave part of a secret in view.
        text = body[: 20 * ERROR_TEXT_LIMIT].decode("utf-8", "replace")
    else:
        fields = data if isinstance(data, dict) else {}
        names = ("error_description", "description", "message", "error")
        text = next((v for k in names if isinstance(v := fields.get(k), str) and v), "")
    for secret in mask:
        if secret:
            text = text.replace(secret, "***")
    return "".join(ch if ch.isprintable() else " " for ch in text[:ERROR_TEXT_LIMIT]).strip()


def token_from_login(status: int, headers: Mapping[str, str], detail: str = "") -> Secret:
    """The token of a getToken response (header `X-Auth-Token`), or `AuthenticationError` carrying
    `detail` (the venue's words, from `error_text`: "User account is locked")."""
    if status == 429:
        raise RateLimited(f"{VENUE} login: HTTP 429", venue=VENUE, code="HTTP 429")
    if status >= 500:
        raise TransportError(f"{VENUE} login: HTTP {status}", retryable=True)
    token = None
    for key, value in headers.items():
        if key.lower() == TOKEN_HEADER.lower():
            token = value.strip()
            break
    if not 200 <= status < 300:
        raise AuthenticationError(
            f"{VENUE} login refused: HTTP {status}" + (f": {detail}" if detail else ""),
            venue=VENUE,
            code=f"HTTP {status}",
            remedy=(
                "check the Primary API user and password: the API credentials your broker issues for "
                "the Primary API (not the Matriz web app login), for this environment (reMarkets users "
                "differ from live ones); if they are right, the venue's words above say why (a blocked "
                "account: ask your broker)"
            ),
        )
    if not token:
        raise AuthenticationError(
            f"{VENUE} login: HTTP {status} without an X-Auth-Token header",
            venue=VENUE,
            code="no token",
            remedy=(
                "the server accepted the request but sent no token: the URL is probably not a Primary "
                "API host (check the environment), or the user has no API access"
            ),
            retryable=False,
        )
    return Secret(token)


def is_auth_error(error: VenueError) -> bool:
    """True for errors a fresh login may cure (the connector re-logs in once, then retries)."""
    return isinstance(error, SessionInvalid)
