"""Primary error descriptions → `core.errors` classes, with a remedy and `retryable`.

Primary answers errors with HTTP 200 and `{"status":"ERROR","description":…,"message":…}` (REST)
or the same object as a WebSocket frame (primary.md §3.1, §4.3). The wordings vary in small ways
(`doesn't exist` on REST, `don't exist` on the socket; Spanish and English), so the table matches
regular expressions on the description (falling back to the message), first match wins. The
variable part (symbol, order id, account) is captured where the class needs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from brokerbridge.core.errors import (
    AuthenticationError,
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
from brokerbridge.venues.primary import VENUE


@dataclass(frozen=True, slots=True)
class ErrorRule:
    pattern: re.Pattern[str]
    error: type[VenueError]
    remedy: str
    retryable: bool | None = None  # None: the class default


def _rule(pattern: str, error: type[VenueError], remedy: str, retryable: bool | None = None) -> ErrorRule:
    return ErrorRule(re.compile(pattern, re.IGNORECASE), error, remedy, retryable)


RELOGIN = "the API token expired or was invalidated (e.g. by a login elsewhere): log in again (getToken)"

ERROR_RULES: tuple[ErrorRule, ...] = (
    _rule(
        r"^Product (?P<symbol>.+):(?P<market>[^:]+) (?:doesn't|don't|does not|do not) exists?",
        UnknownSymbol,
        "use a symbol Primary lists (rest/instruments/all), spelled exactly, e.g. "
        "'MERV - XMEV - GGAL - 24hs' or 'DLR/DIC25'",
    ),
    _rule(
        r"^No hay Market Data para (?P<symbol>.+?)\s*:\s*(?P<market>\S+)\s*$",
        UnknownSymbol,
        "Primary has no market data for this symbol (wrong settlement, e.g. 48hs, or not served here)",
    ),
    _rule(
        r"^Segment (?P<segment>.+):(?P<market>[^:]+) (?:doesn't|don't|does not) exists?",
        InvalidRequest,
        "use a segment from rest/segment/all (DDF, DDA, DUAL, MERV, …)",
    ),
    _rule(
        r"^Order (?P<order>.+):(?P<proprietary>[^:]+) (?:doesn't|don't|does not) exists?",
        UnknownOrder,
        "the clOrdId/proprietary pair is unknown: check both (proprietary is PBCP on reMarkets, "
        "ISV_PBCP on xOMS brokers, api on Primary live)",
    ),
    _rule(
        r"no tiene acceso a la cuenta|not (?:have )?access to (?:the )?account",
        PermissionDenied,
        "this user may not operate that account: use an account listed by rest/accounts",
    ),
    _rule(
        r"^Access Denied",
        SessionInvalid,
        RELOGIN + "; if it repeats right after a fresh login, this route is not enabled for the user",
    ),
    _rule(
        r"token.*(?:expired|invalid|vencido)|(?:expired|invalid) token|unauthori[sz]ed",
        SessionInvalid,
        RELOGIN,
    ),
    _rule(
        r"user(?:name)? or password|usuario o contrase|bad credentials|invalid_grant",
        AuthenticationError,
        "check the Primary API user and password (API credentials, not the broker web app's)",
    ),
    _rule(
        r"^Ruta invalida|invalid route|not found$",
        InvalidRequest,
        "unknown API route (our bug: please report it)",
    ),
    _rule(
        r"too many requests|rate limit|demasiadas",
        RateLimited,
        "Primary's best-practice rates were exceeded; brokerbridge slows down and retries",
    ),
    _rule(
        r"mercado cerrado|market (?:is )?closed|fuera de horario",
        OrderRejected,
        "the market is closed for this instrument; send it during trading hours",
    ),
    _rule(
        r"saldo|insufficient|insuficiente|fondos|margin|margen|l[ií]mite|limit",
        OrderRejected,
        "the broker's risk checks refused the order: reduce size or add funds",
    ),
    _rule(
        r"precio|price|tick|cantidad|quantity",
        OrderRejected,
        "price or quantity invalid for this instrument: check tick size, lot and price limits "
        "(rest/instruments/detail)",
    ),
    _rule(
        r"service unavailable|internal|temporarily|intente m[aá]s tarde|try again",
        ServiceUnavailable,
        "Primary reported a temporary failure; retried with backoff",
    ),
)


@dataclass(frozen=True, slots=True)
class ErrorMatch:
    rule: ErrorRule
    groups: dict[str, str]


def match_error(text: str) -> ErrorMatch | None:
    """The first table row matching `text`, with its captured groups."""
    stripped = text.strip()
    for rule in ERROR_RULES:
        found = rule.pattern.search(stripped)
        if found is not None:
            return ErrorMatch(rule, {k: v.strip() for k, v in found.groupdict().items() if v is not None})
    return None


def error_from_primary(
    description: str | None, message: str | None = None, *, venue: str = VENUE
) -> VenueError:
    """The exception for one Primary error (`description` decides; `message` when it is empty).

    On the socket `message` echoes the offending request as a string, so it is only kept as
    context. Unknown wordings become a plain non-retryable `VenueError` that quotes the text.
    """
    text = (description or "").strip() or (message or "").strip() or "unspecified error"
    found = match_error(text)
    if found is None and message and description:
        found = match_error(message)
    full = f"{venue}: {text}"
    if found is None:
        return VenueError(
            full,
            venue=venue,
            code=text,
            remedy="Primary returned an error brokerbridge does not know; see the text above",
            retryable=False,
        )
    rule = found.rule
    return rule.error(full, venue=venue, code=text, remedy=rule.remedy, retryable=rule.retryable)


def symbol_in_error(text: str) -> str | None:
    """The symbol an unknown-product error names (`Product X:ROFX don't exist` → `X`)."""
    found = match_error(text)
    if found is None:
        return None
    return found.groups.get("symbol")


def session_expired(status: int, *, venue: str = VENUE) -> SessionInvalid:
    """HTTP 401/403 on a REST call: the token is no longer valid."""
    return SessionInvalid(
        f"{venue}: HTTP {status}: token expired or invalidated: re-login",
        venue=venue,
        code=f"HTTP {status}",
        remedy=RELOGIN,
        retryable=True,
    )
