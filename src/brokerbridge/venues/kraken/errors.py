"""Kraken error strings → the brokerbridge exception tree, by one table.

Kraken reports errors as text: REST as an array (`{"error":["EAPI:Invalid key"]}`), WS v2 as one
string in an ack (`"error":"ESession:Invalid session"`), both from the same vocabulary
(kraken.md §1.5, §3.9). Many carry details after the code (`EGeneral:Invalid arguments:ordertype`,
`EService:Throttled: 1700000000`, `Currency pair not supported XBT/USD`), so lookup goes:

1. exact match;
2. the string with trailing `:<detail>` parts removed one at a time (`A:B:C` → `A:B`);
3. the listed free-text prefixes and suffixes (WS messages that are not `E<Category>:` codes).

Anything else becomes a plain, non-retryable `VenueError` carrying the raw code, so a new Kraken
string never crashes us and is visible in logs as-is.
"""

from __future__ import annotations

from dataclasses import dataclass

from brokerbridge.core.errors import (
    AuthenticationError,
    InvalidNonce,
    InvalidRequest,
    OrderRejected,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    SessionInvalid,
    UnknownOrder,
    UnknownSymbol,
    VenueError,
)
from brokerbridge.venues.kraken import VENUE


@dataclass(frozen=True, slots=True)
class ErrorRule:
    error: type[VenueError]
    remedy: str
    retryable: bool


def _rule(error: type[VenueError], remedy: str, retryable: bool | None = None) -> ErrorRule:
    return ErrorRule(error, remedy, error.retryable if retryable is None else retryable)


_CHECK_KEY = "check the API key and secret in the config (copy them again from Kraken's API key page)"
_BACKOFF = "too many requests; brokerbridge backs off and retries"
_ORDER = "the order was refused and not placed; adjust it and submit again"

# Exact codes (also matched after stripping `:<detail>` suffixes).
ERROR_TABLE: dict[str, ErrorRule] = {
    # EGeneral
    "EGeneral:Invalid arguments": _rule(
        InvalidRequest, "a parameter is missing or malformed (see the detail)"
    ),
    "EGeneral:Invalid arguments:Index unavailable": _rule(
        OrderRejected, "this pair has no index price; use trigger=last for stop/take-profit orders"
    ),
    # REST refusals get the permission of the call named (rest.parse_answer); this is for the rest.
    "EGeneral:Permission denied": _rule(
        PermissionDenied,
        "this API key lacks a permission; on kraken.com › Settings › API › edit the key, enable: Query "
        "Funds (balances), Query Open / Closed Orders & Trades (orders, fills), Access WebSockets API "
        "(private streams), Create & Modify / Cancel/Close Orders (trading); `brokerbridge doctor "
        "kraken` names the one missing",
    ),
    "EGeneral:Temporary lockout": _rule(
        AuthenticationError,
        "too many invalid-key errors locked the key for ~15 minutes; fix the key, then wait",
    ),
    "EGeneral:Internal error": _rule(
        ServiceUnavailable, "Kraken internal error; retried, contact Kraken support if it persists"
    ),
    "EGeneral:Too many requests": _rule(RateLimited, _BACKOFF),
    "EGeneral:Unknown method": _rule(
        InvalidRequest, "the API method name is wrong (our bug: please report it)"
    ),
    # EAPI
    "EAPI:Invalid key": _rule(AuthenticationError, _CHECK_KEY),
    "EAPI:Invalid signature": _rule(AuthenticationError, _CHECK_KEY + "; the secret must be the base64 text"),
    "EAPI:Invalid nonce": _rule(
        InvalidNonce,
        "another client uses this API key with a larger nonce; give brokerbridge its own key or "
        "raise the key's nonce window",
    ),
    "EAPI:Rate limit exceeded": _rule(
        RateLimited, "REST call counter exceeded; brokerbridge slows down and retries"
    ),
    "EAPI:Bad request": _rule(InvalidRequest, "the request was malformed (our bug: please report it)"),
    "EAPI:Invalid token": _rule(
        SessionInvalid, "the WebSocket token is stale; a fresh one is requested automatically"
    ),
    # EService
    "EService:Throttled": _rule(RateLimited, "too many concurrent requests; retried after the given time"),
    "EService:Unavailable": _rule(
        ServiceUnavailable, "Kraken's engine or API is offline; retried with backoff"
    ),
    "EService:Busy": _rule(ServiceUnavailable, "Kraken is busy; retried with backoff"),
    "EService:Market in cancel_only mode": _rule(
        ServiceUnavailable, "the market only accepts cancels right now (see SystemStatus); retry later"
    ),
    "EService:Market in post_only mode": _rule(
        ServiceUnavailable, "the market only accepts post-only orders right now; retry later or use post_only"
    ),
    "EService:Deadline elapsed": _rule(
        ServiceUnavailable, "the order's deadline passed before the engine saw it; it was not placed"
    ),
    # EQuery
    "EQuery:Unknown asset pair": _rule(
        UnknownSymbol, "use a pair Kraken lists (AssetPairs / instrument channel)"
    ),
    "EQuery:Unknown asset": _rule(UnknownSymbol, "use an asset Kraken lists (Assets)"),
    # EOrder
    "EOrder:Insufficient funds": _rule(
        OrderRejected, "not enough balance for this order; deposit or reduce size"
    ),
    "EOrder:Order minimum not met": _rule(OrderRejected, "order size below the pair's ordermin; increase it"),
    "EOrder:Cost minimum not met": _rule(OrderRejected, "order cost below the pair's costmin; increase it"),
    "EOrder:Tick size check failed": _rule(OrderRejected, "price is not a multiple of the pair's tick_size"),
    "EOrder:Invalid price": _rule(OrderRejected, "the price is invalid for this pair/order type"),
    "EOrder:Unknown order": _rule(UnknownOrder, "the order id is unknown or already closed"),
    "EOrder:Invalid order": _rule(UnknownOrder, "the order id is unknown, closed or invalid"),
    "EOrder:Orders limit exceeded": _rule(
        OrderRejected, "too many open orders on this pair; cancel some first"
    ),
    "EOrder:Rate limit exceeded": _rule(RateLimited, "per-pair trading rate limit; slow down order changes"),
    "EOrder:Domain rate limit exceeded": _rule(RateLimited, "account-wide trading rate limit; slow down"),
    "EOrder:Cannot open position": _rule(OrderRejected, _ORDER),
    "EOrder:Positions limit exceeded": _rule(
        OrderRejected, "too many open margin positions; close some first"
    ),
    "EOrder:Reduce only": _rule(OrderRejected, "a reduce-only order would increase the position"),
    # EAuth / EAccount / ETrade / ESession
    "EAuth:Rate limit exceeded": _rule(RateLimited, _BACKOFF),
    "EAuth:Too many requests": _rule(RateLimited, _BACKOFF),
    "EAuth:Account temporary disabled": _rule(
        AuthenticationError, "the Kraken account is temporarily disabled; contact Kraken"
    ),
    "EAuth:Account unconfirmed": _rule(
        AuthenticationError, "the Kraken account is not verified for this; finish verification"
    ),
    "EAccount:Invalid permissions": _rule(
        PermissionDenied, "the account (not only the key) lacks permission for this"
    ),
    "ETrade:Invalid request": _rule(InvalidRequest, "the trading request was malformed"),
    "ESession:Invalid session": _rule(
        SessionInvalid, "the WebSocket token is missing or stale; a fresh one is requested automatically"
    ),
    # WS v2 plain-text errors (§3.9)
    "Token(s) not found": _rule(
        SessionInvalid, "the WebSocket token is missing; a fresh one is requested automatically"
    ),
    "Subscription name invalid": _rule(InvalidRequest, "unknown channel name (our bug: please report it)"),
    "Unsupported event": _rule(
        InvalidRequest, "Kraken did not understand the request (our bug: please report it)"
    ),
    "Already subscribed": _rule(InvalidRequest, "the subscription already exists; nothing to do"),
    "Subscription Not Found": _rule(
        InvalidRequest, "no such subscription (unsubscribe must repeat depth/interval)"
    ),
    "Symbol(s) not found": _rule(UnknownSymbol, "the symbol list was empty or unknown"),
    "Exceeded msg rate": _rule(RateLimited, "too many WebSocket messages; brokerbridge slows down"),
    "Private data and trading are unavailable on this endpoint. Try ws-auth.kraken.com": _rule(
        InvalidRequest,
        "private channels need the authenticated endpoint (ws-auth.kraken.com/v2); fix the URL",
    ),
    "Public market data subscriptions are unavailable on this endpoint. Try ws.kraken.com": _rule(
        InvalidRequest, "public channels need the public endpoint (ws.kraken.com/v2); fix the URL"
    ),
}

# Free-text messages with a variable part: (prefix, rule), longest prefix first.
PREFIX_RULES: tuple[tuple[str, ErrorRule], ...] = (
    (
        "Currency pair not supported",
        _rule(UnknownSymbol, "use the v2 symbol (BTC/USD, not XBT/USD) from the instrument channel"),
    ),
    (
        "Unsupported field:",
        _rule(InvalidRequest, "a request field is not accepted (our bug: please report it)"),
    ),
    ("EOrder:Margin", _rule(OrderRejected, "margin limits refuse this order; reduce size or leverage")),
)

# Messages whose variable part comes first (`Limit_price field must be a number_float`).
SUFFIX_RULES: tuple[tuple[str, ErrorRule], ...] = (
    (
        "field must be a number_float",
        _rule(InvalidRequest, "a numeric field was sent in the wrong type (our bug)"),
    ),
)


def lookup_rule(code: str) -> ErrorRule | None:
    """The table row for `code`, or None when Kraken sent something we do not know."""
    text = code.strip()
    candidate = text
    while True:
        rule = ERROR_TABLE.get(candidate)
        if rule is not None:
            return rule
        head, sep, _ = candidate.rpartition(":")
        if not sep or ":" not in head:  # keep at least `E<Category>:<description>`
            break
        candidate = head
    for prefix, rule in PREFIX_RULES:
        if text.startswith(prefix):
            return rule
    for suffix, rule in SUFFIX_RULES:
        if text.endswith(suffix):
            return rule
    return None


def error_from_kraken(code: str, *, venue: str = VENUE) -> VenueError:
    """The exception for one Kraken error string (unknown strings → plain `VenueError`)."""
    rule = lookup_rule(code)
    message = f"{venue}: {code}"
    if rule is None:
        return VenueError(
            message,
            venue=venue,
            code=code,
            remedy="Kraken returned an error brokerbridge does not know; see the code above",
            retryable=False,
        )
    return rule.error(message, venue=venue, code=code, remedy=rule.remedy, retryable=rule.retryable)


def error_from_kraken_list(codes: list[str], *, venue: str = VENUE) -> VenueError:
    """REST sends an array; the first error decides the class, the rest are kept in the message."""
    if not codes:
        return VenueError(f"{venue}: empty error list", venue=venue, code="", retryable=False)
    error = error_from_kraken(codes[0], venue=venue)
    if len(codes) > 1:
        error.message = f"{error.message} (also: {'; '.join(codes[1:])})"
        error.args = (error.message,)
    return error
