"""Kraken REST codec, sans I/O: build requests (signed for private methods), parse responses.

The I/O edge (io/kraken/rest.py) sends what `build_public` / `build_private` return and hands the
status code and body bytes to `parse_result`. Kraken answers HTTP 200 even for API errors
(kraken.md §1.1): the `error` array decides, mapped by `errors.py`; non-200 means the request never
reached the API and is a transport problem.

Secrets: the API secret only enters `auth.sign`; `RestRequest.__repr__` masks the auth headers and
no error message is built from request data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import msgspec

from brokerbridge.core.errors import (
    ConfigError,
    ProtocolError,
    RateLimited,
    TransportError,
)
from brokerbridge.core.numbers import first_insane
from brokerbridge.core.secret import Secret
from brokerbridge.venues.kraken import VENUE
from brokerbridge.venues.kraken.auth import sign
from brokerbridge.venues.kraken.errors import error_from_kraken_list
from brokerbridge.venues.kraken.rest_messages import (
    AddOrderResult,
    AssetInfo,
    AssetPair,
    BalanceExEntry,
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
}
PUBLIC_METHODS = frozenset(
    {"Time", "SystemStatus", "Assets", "AssetPairs", "Ticker", "Depth", "OHLC", "Trades"}
)
PRIVATE_METHODS = frozenset(RESULT_TYPES) - PUBLIC_METHODS

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
_MASKED_HEADERS = frozenset({"API-Key", "API-Sign"})

ParamValue = str | int | float | bool | Decimal | list[str] | tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class RestRequest:
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


def _text(value: ParamValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")  # never exponent notation
    if isinstance(value, list | tuple):
        return ",".join(value)
    return str(value)


def encode_params(params: Mapping[str, ParamValue] | None) -> list[tuple[str, str]]:
    """Form fields in the caller's order; None values are left out."""
    return [(key, _text(value)) for key, value in (params or {}).items() if value is not None]


def build_public(method: str, params: Mapping[str, ParamValue] | None = None) -> RestRequest:
    if method not in PUBLIC_METHODS:
        raise ValueError(f"{method!r} is not a Kraken public method we support: {sorted(PUBLIC_METHODS)}")
    return RestRequest("GET", PUBLIC_PREFIX + method, query=urlencode(encode_params(params)))


def build_private(
    method: str,
    params: Mapping[str, ParamValue] | None,
    nonce: str | int,
    api_key: str | Secret,
    secret: str | Secret,
) -> RestRequest:
    """A signed POST: form body starting with `nonce`, `API-Key` and `API-Sign` headers.

    The signature covers the exact body string returned, so send `body` byte for byte.
    """
    if method not in PRIVATE_METHODS:
        raise ValueError(f"{method!r} is not a Kraken private method we support: {sorted(PRIVATE_METHODS)}")
    path = PRIVATE_PREFIX + method
    fields = [("nonce", str(nonce)), *((k, v) for k, v in encode_params(params) if k != "nonce")]
    body = urlencode(fields)
    key = api_key.reveal() if isinstance(api_key, Secret) else api_key
    secret_text = secret.reveal() if isinstance(secret, Secret) else secret
    try:
        signature = sign(path, str(nonce), body, secret_text)
    except ValueError as exc:
        raise ConfigError("Kraken API secret is not valid base64", remedy=str(exc)) from None
    headers = {"API-Key": key, "API-Sign": signature, "Content-Type": FORM_CONTENT_TYPE}
    return RestRequest("POST", path, body=body, headers=headers)


class _Envelope(msgspec.Struct):
    error: list[str] = []
    result: msgspec.Raw = msgspec.Raw()  # empty when absent


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_decoders: dict[str, msgspec.json.Decoder[Any]] = {
    name: msgspec.json.Decoder(kind) for name, kind in RESULT_TYPES.items() if name not in ("OHLC", "Trades")
}
_paged_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ohlc_rows = msgspec.json.Decoder(list[OhlcRow])
_trade_rows = msgspec.json.Decoder(list[TradeRow])
_last_int = msgspec.json.Decoder(int | None)
_last_str = msgspec.json.Decoder(str | int | None)


def parse_result(status_code: int, body: bytes | str, method: str | None = None) -> Any:
    """The `result` of a Kraken REST response, typed when `method` is given.

    Raises: the mapped `VenueError` subclass for a non-empty `error` array; `RateLimited` for
    HTTP 429; `TransportError` for other non-200 statuses and non-JSON bodies (a proxy's HTML
    page); `ProtocolError` when JSON arrives in a shape we do not know.
    """
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
    try:
        if method is None:
            return msgspec.json.decode(envelope.result)
        if method in ("OHLC", "Trades"):
            result = _parse_paged(method, envelope.result)
        elif (decoder := _decoders.get(method)) is not None:
            result = decoder.decode(envelope.result)
        else:
            raise ValueError(f"no result type for Kraken method {method!r}")
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ProtocolError(f"{VENUE} REST {method}: unexpected result shape ({exc})") from None
    if (where := first_insane(result)) is not None:  # "NaN" / "1e999999" amounts
        raise ProtocolError(f"{VENUE} REST {method}: {where} is not a sane number")
    return result


def _parse_paged(method: str, raw: msgspec.Raw) -> OhlcResult | TradesResult:
    """OHLC/Trades results hold `{<pair>: rows, "last": cursor}` in one object."""
    entries = _paged_decoder.decode(raw)
    last_raw = entries.pop("last", None)
    if len(entries) != 1:
        raise ProtocolError(f"{VENUE} REST {method}: expected one pair, got {sorted(entries)[:5]}")
    ((pair, rows),) = entries.items()
    if method == "OHLC":
        last = _last_int.decode(last_raw) if last_raw is not None else None
        return OhlcResult(pair=pair, rows=_ohlc_rows.decode(rows), last=last)
    cursor = _last_str.decode(last_raw) if last_raw is not None else None
    return TradesResult(
        pair=pair, rows=_trade_rows.decode(rows), last=None if cursor is None else str(cursor)
    )
