"""The bridge server's refusals as exceptions of brokerbridge's one tree (core/errors.py).

A server error code maps to the same class the in-process `Bridge` raises for that mistake, so a
bot's `except UnknownSymbol:` works whether it runs beside the bridge or talks to it over the
network. Every one is a `VenueError` whose `code` is the server's code and `venue` the venue asked.

    not_authorized  → NotAuthorized (a PermissionDenied): no key, or the key lacks the scope
    unknown_venue   → UnknownVenue      unknown_channel → UnknownChannel   (InvalidRequest)
    unknown_symbol  → UnknownSymbol     invalid_request, malformed → InvalidRequest
    rate_limited    → RateLimited       unavailable → ServiceUnavailable (retryable)
"""

from __future__ import annotations

from brokerbridge.core.errors import (
    InvalidRequest,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    UnknownSymbol,
    VenueError,
)


class NotAuthorized(PermissionDenied):
    default_remedy = "pass a key with the needed scope: BridgeClient(url, key=...)"


class UnknownVenue(InvalidRequest):
    default_remedy = "use a venue the bridge serves (BridgeClient.venues())"


class UnknownChannel(InvalidRequest):
    default_remedy = (
        "channels: ticker, book, trades, candles, instruments, stats, balances, executions, positions"
    )


ERRORS: dict[str, type[VenueError]] = {
    "not_authorized": NotAuthorized,
    "unknown_venue": UnknownVenue,
    "unknown_channel": UnknownChannel,
    "unknown_symbol": UnknownSymbol,
    "invalid_request": InvalidRequest,
    "malformed": InvalidRequest,
    "rate_limited": RateLimited,
    "unavailable": ServiceUnavailable,
}


def error_from(code: str, message: str, remedy: str = "", *, venue: str = "") -> VenueError:
    """The exception for a server error body (an unknown code: a plain `VenueError`)."""
    kind = ERRORS.get(code, VenueError)
    return kind(message, venue=venue, code=code, remedy=remedy or None)
