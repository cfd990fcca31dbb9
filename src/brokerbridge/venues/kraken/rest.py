"""Kraken REST codec, sans I/O: typed request builders, signing, response parsing.

A builder (`open_orders_request()`, `trades_request(pair, since)`, …) returns a `Request[T]`
(core/rest.py) naming the method, its fields and `T`, the type the answer decodes to. The I/O
edge (io/kraken/rest.py) turns it into bytes on the wire with `public_wire` / `signed_wire` and
hands the status code and body to `parse_answer`, which returns a `T`. Kraken answers HTTP 200
even for API errors (kraken.md §1.1): the `error` array decides, mapped by `errors.py`; non-200
means the request never reached the API and is a transport problem.

Secrets: the API secret only enters `auth.sign`; `RestRequest.__repr__` masks the auth headers and
no error message is built from request data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

import msgspec

from brokerbridge.core.errors import (
    ConfigError,
    PermissionDenied,
    ProtocolError,
    RateLimited,
    TransportError,
)
from brokerbridge.core.numbers import first_insane
from brokerbridge.core.rest import Request
from brokerbridge.core.secret import Secret
from brokerbridge.venues.kraken import VENUE, permissions
from brokerbridge.venues.kraken.auth import sign
from brokerbridge.venues.kraken.errors import error_from_kraken_list
from brokerbridge.venues.kraken.rest_messages import (
    AddOrderResult,
    AmendOrderResult,
    AssetInfo,
    AssetPair,
    BalanceExEntry,
    CancelAllAfterResult,
    CancelOrderResult,
    ClosedOrders,
    DepthBook,
    OhlcResult,
    OhlcRow,
    OpenOrders,
    ServerTime,
    SystemStatus,
    TickerInfo,
    TradeRow,
    TradesHistory,
    TradesResult,
    WebSocketsToken,
)

T = TypeVar("T")

PUBLIC_PREFIX = "/0/public/"
PRIVATE_PREFIX = "/0/private/"

# Result type per method; OHLC and Trades are assembled by `_parse_paged` (pair key + `last`).
RESULT_TYPES: dict[str, Any] = {
    "Time": ServerTime,
    "SystemStatus": SystemStatus,
    "Assets": dict[str, AssetInfo],
    "AssetPairs": dict[str, AssetPair],
    "Ticker": dict[str, TickerInfo],
    "Depth": dict[str, DepthBook],
    "OHLC": OhlcResult,
    "Trades": TradesResult,
    "Balance": dict[str, Decimal],
    "BalanceEx": dict[str, BalanceExEntry],
    "OpenOrders": OpenOrders,
    "ClosedOrders": ClosedOrders,
    "TradesHistory": TradesHistory,
    "GetWebSocketsToken": WebSocketsToken,
    "AddOrder": AddOrderResult,
    "CancelOrder": CancelOrderResult,
    "AmendOrder": AmendOrderResult,
    "CancelAllOrdersAfter": CancelAllAfterResult,
}
PUBLIC_METHODS = frozenset(
    {"Time", "SystemStatus", "Assets", "AssetPairs", "Ticker", "Depth", "OHLC", "Trades"}
)
PRIVATE_METHODS = frozenset(RESULT_TYPES) - PUBLIC_METHODS
HISTORY_PAGE = 50  # rows per page of ClosedOrders and TradesHistory (`ofs` counts rows)

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
_MASKED_HEADERS = frozenset({"API-Key", "API-Sign"})

ParamValue = str | int | float | bool | Decimal | list[str] | tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class RestRequest:
    """A request as it goes on the wire (signed when private)."""

    method: str  # HTTP verb
    path: str  # /0/public/Ticker
    query: str = ""
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def target(self) -> str:
        """Path plus query string, to append to the base URL."""
        return f"{self.path}?{self.query}" if self.query else self.path

    def __repr__(self) -> str:
        headers = {k: ("***" if k in _MASKED_HEADERS else v) for k, v in self.headers.items()}
        return f"RestRequest({self.method} {self.target}, body={len(self.body)} chars, headers={headers})"


def _text(value: str | int | float | bool | Decimal | list[str] | tuple[str, ...]) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")  # never exponent notation
    if isinstance(value, list | tuple):
        return ",".join(value)
    return str(value)


def encode_params(
    params: Mapping[str, ParamValue] | Iterable[tuple[str, ParamValue]] | None,
) -> list[tuple[str, str]]:
    """Form fields in the caller's order; None values are left out."""
    items: Iterable[tuple[str, ParamValue]] = (
        params.items() if isinstance(params, Mapping) else (params or ())
    )
    return [(key, _text(value)) for key, value in items if value is not None]


# ---------------------------------------------------------------- typed builders


def _public(name: str, answer: type[T], *params: tuple[str, ParamValue]) -> Request[T]:
    return Request(name, "GET", PUBLIC_PREFIX + name, answer, tuple(encode_params(params)))


def _private(name: str, answer: type[T], *params: tuple[str, ParamValue]) -> Request[T]:
    return Request(name, "POST", PRIVATE_PREFIX + name, answer, tuple(encode_params(params)))


def server_time_request() -> Request[ServerTime]:
    return _public("Time", ServerTime)


def system_status_request() -> Request[SystemStatus]:
    return _public("SystemStatus", SystemStatus)


def asset_pairs_request() -> Request[dict[str, AssetPair]]:
    return _public("AssetPairs", dict[str, AssetPair])


def ticker_request(pairs: Sequence[str]) -> Request[dict[str, TickerInfo]]:
    """Tickers of several REST pair names at once."""
    return _public("Ticker", dict[str, TickerInfo], ("pair", ",".join(pairs)))


def depth_request(pair: str, count: int) -> Request[dict[str, DepthBook]]:
    return _public("Depth", dict[str, DepthBook], ("pair", pair), ("count", count))


def ohlc_request(pair: str, interval: int, since: float | None = None) -> Request[OhlcResult]:
    """Candles of `interval` minutes; `since` (epoch seconds) asks for those after it only."""
    return _public(
        "OHLC",
        OhlcResult,
        ("pair", pair),
        ("interval", interval),
        ("since", None if since is None else int(since)),
    )


def trades_request(pair: str, since: float | None = None) -> Request[TradesResult]:
    """Recent trades; `since` (epoch seconds) asks for those after it (Kraken's cursor is in ns)."""
    cursor = None if since is None else str(int(since * 1e9))
    return _public("Trades", TradesResult, ("pair", pair), ("since", cursor))


def balance_request() -> Request[dict[str, Decimal]]:
    return _private("Balance", dict[str, Decimal])


def balance_ex_request() -> Request[dict[str, BalanceExEntry]]:
    return _private("BalanceEx", dict[str, BalanceExEntry])


def open_orders_request() -> Request[OpenOrders]:
    return _private("OpenOrders", OpenOrders)


def closed_orders_request(start: float | None = None, page: int = 0) -> Request[ClosedOrders]:
    """One page (newest first) of the orders closed since `start` (epoch seconds)."""
    return _private("ClosedOrders", ClosedOrders, *_history(start, page))


def trades_history_request(start: float | None = None, page: int = 0) -> Request[TradesHistory]:
    """One page (newest first) of the account's fills since `start` (epoch seconds)."""
    return _private("TradesHistory", TradesHistory, *_history(start, page))


def _history(start: float | None, page: int) -> list[tuple[str, ParamValue]]:
    return [("start", None if start is None else int(start)), ("ofs", page * HISTORY_PAGE if page else None)]


def websockets_token_request() -> Request[WebSocketsToken]:
    return _private("GetWebSocketsToken", WebSocketsToken)


def add_order_request(
    *,
    pair: str,
    side: str,
    order_type: str,
    volume: Decimal,
    price: Decimal | None = None,
    cl_ord_id: str | None = None,
    validate: bool = False,
    time_in_force: str | None = None,
) -> Request[AddOrderResult]:
    """`validate=True`: Kraken checks the order (permission included) and places nothing.
    `time_in_force`: GTC, IOC or GTD (None: Kraken's default, GTC)."""
    return _private(
        "AddOrder",
        AddOrderResult,
        ("pair", pair),
        ("type", side),
        ("ordertype", order_type),
        ("volume", volume),
        ("price", price),
        ("cl_ord_id", cl_ord_id),
        ("timeinforce", time_in_force),
        ("validate", True if validate else None),
    )


def cancel_order_request(txid: str) -> Request[CancelOrderResult]:
    return _private("CancelOrder", CancelOrderResult, ("txid", txid))


def amend_order_request(
    txid: str, *, order_qty: Decimal | None = None, limit_price: Decimal | None = None
) -> Request[AmendOrderResult]:
    """Change an open order in place (it keeps its txid and client order id)."""
    return _private(
        "AmendOrder",
        AmendOrderResult,
        ("txid", txid),
        ("order_qty", order_qty),
        ("limit_price", limit_price),
    )


def cancel_all_orders_after_request(timeout: int) -> Request[CancelAllAfterResult]:
    """The dead man's switch: every open order canceled `timeout` s from now unless called again
    first; 0 disables it."""
    return _private("CancelAllOrdersAfter", CancelAllAfterResult, ("timeout", timeout))


# ---------------------------------------------------------------- on the wire


def is_private(request: Request[Any]) -> bool:
    """Whether `request` must be signed (and sent under the nonce lock)."""
    return request.path.startswith(PRIVATE_PREFIX)


def public_wire(request: Request[Any]) -> RestRequest:
    return RestRequest("GET", request.path, query=urlencode(request.params))


def signed_wire(
    request: Request[Any], nonce: str | int, api_key: str | Secret, secret: str | Secret
) -> RestRequest:
    """A signed POST: form body starting with `nonce`, `API-Key` and `API-Sign` headers.

    The signature covers the exact body string returned, so send `body` byte for byte.
    """
    fields = [("nonce", str(nonce)), *((k, v) for k, v in request.params if k != "nonce")]
    body = urlencode(fields)
    key = api_key.reveal() if isinstance(api_key, Secret) else api_key
    secret_text = secret.reveal() if isinstance(secret, Secret) else secret
    try:
        signature = sign(request.path, str(nonce), body, secret_text)
    except ValueError as exc:
        raise ConfigError("Kraken API secret is not valid base64", remedy=str(exc)) from None
    headers = {"API-Key": key, "API-Sign": signature, "Content-Type": FORM_CONTENT_TYPE}
    return RestRequest("POST", request.path, body=body, headers=headers)


def build_public(method: str, params: Mapping[str, ParamValue] | None = None) -> RestRequest:
    """The wire request of a public method named as a string (tools and tests)."""
    if method not in PUBLIC_METHODS:
        raise ValueError(f"{method!r} is not a Kraken public method we support: {sorted(PUBLIC_METHODS)}")
    return public_wire(_public(method, RESULT_TYPES[method], *encode_params(params)))


def build_private(
    method: str,
    params: Mapping[str, ParamValue] | None,
    nonce: str | int,
    api_key: str | Secret,
    secret: str | Secret,
) -> RestRequest:
    """The signed wire request of a private method named as a string (tools and tests)."""
    if method not in PRIVATE_METHODS:
        raise ValueError(f"{method!r} is not a Kraken private method we support: {sorted(PRIVATE_METHODS)}")
    request = _private(method, RESULT_TYPES[method], *encode_params(params))
    return signed_wire(request, nonce, api_key, secret)


# ---------------------------------------------------------------- parsing


class _Envelope(msgspec.Struct):
    error: list[str] = []
    result: msgspec.Raw = msgspec.Raw()  # empty when absent


_PAGED = (OhlcResult, TradesResult)
_envelope_decoder = msgspec.json.Decoder(_Envelope)
# Keyed by result type (`dict[str, AssetPair]` compares and hashes equal to another spelling of it).
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {
    kind: msgspec.json.Decoder(kind) for kind in RESULT_TYPES.values() if kind not in _PAGED
}
_paged_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ohlc_rows = msgspec.json.Decoder(list[OhlcRow])
_trade_rows = msgspec.json.Decoder(list[TradeRow])
_last_int = msgspec.json.Decoder(int | None)
_last_str = msgspec.json.Decoder(str | int | None)


def parse_answer(request: Request[T], status_code: int, body: bytes | str) -> T:
    """The `result` of the response to `request`, as the type the request names.

    Raises as `parse_result` does; a refusal for want of a permission names the permission
    `request` needs (Kraken's `EGeneral:Permission denied` does not).
    """
    try:
        raw = _result(status_code, body)
    except PermissionDenied as exc:
        needed = permissions.needed_for(request.name)
        if needed is not None and exc.code == "EGeneral:Permission denied":
            exc.message = f"{exc.message} ({request.name} needs “{needed.label}”)"
            exc.args = (exc.message,)
            exc.remedy = needed.remedy()
        raise
    return cast(T, _decode(request.name, request.answer, raw))


def parse_result(status_code: int, body: bytes | str, method: str | None = None) -> Any:
    """The `result` of a Kraken REST response, typed when `method` is given (untyped when not).

    Raises: the mapped `VenueError` subclass for a non-empty `error` array; `RateLimited` for
    HTTP 429; `TransportError` for other non-200 statuses and non-JSON bodies (a proxy's HTML
    page); `ProtocolError` when JSON arrives in a shape we do not know.
    """
    raw = _result(status_code, body)
    if method is None:
        return msgspec.json.decode(raw)
    if method not in RESULT_TYPES:
        raise ValueError(f"no result type for Kraken method {method!r}")
    return _decode(method, RESULT_TYPES[method], raw)


def _result(status_code: int, body: bytes | str) -> msgspec.Raw:
    """The `result` of a response, undecoded, or the error it carries raised."""
    if status_code == 429:
        raise RateLimited(f"{VENUE} REST: HTTP 429", venue=VENUE, code="HTTP 429")
    if status_code != 200:
        raise TransportError(
            f"{VENUE} REST: HTTP {status_code}", retryable=status_code >= 500 or status_code == 408
        )
    try:
        envelope = _envelope_decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        raise TransportError(
            f"{VENUE} REST: response is not a JSON envelope (proxy or outage page?)"
        ) from None
    # Strings starting with W are warnings; only E… strings make the call fail.
    errors = [text for text in envelope.error if not text.startswith("W")]
    if errors:
        raise error_from_kraken_list(errors)
    if not envelope.result:
        raise ProtocolError(f"{VENUE} REST: response has neither error nor result")
    return envelope.result


def _decode(method: str, answer: Any, raw: msgspec.Raw) -> Any:
    try:
        if answer in _PAGED:
            result = _parse_paged(method, answer, raw)
        elif (decoder := _decoders.get(answer)) is not None:
            result = decoder.decode(raw)
        else:
            raise ValueError(f"no decoder for Kraken {method} answers of type {answer!r}")
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ProtocolError(f"{VENUE} REST {method}: unexpected result shape ({exc})") from None
    if (where := first_insane(result)) is not None:  # "NaN" / "1e999999" amounts
        raise ProtocolError(f"{VENUE} REST {method}: {where} is not a sane number")
    return result


def _parse_paged(method: str, answer: Any, raw: msgspec.Raw) -> OhlcResult | TradesResult:
    """OHLC/Trades results hold `{<pair>: rows, "last": cursor}` in one object."""
    entries = _paged_decoder.decode(raw)
    last_raw = entries.pop("last", None)
    if len(entries) != 1:
        raise ProtocolError(f"{VENUE} REST {method}: expected one pair, got {sorted(entries)[:5]}")
    ((pair, rows),) = entries.items()
    if answer is OhlcResult:
        last = _last_int.decode(last_raw) if last_raw is not None else None
        return OhlcResult(pair=pair, rows=_ohlc_rows.decode(rows), last=last)
    cursor = _last_str.decode(last_raw) if last_raw is not None else None
    return TradesResult(
        pair=pair, rows=_trade_rows.decode(rows), last=None if cursor is None else str(cursor)
    )
