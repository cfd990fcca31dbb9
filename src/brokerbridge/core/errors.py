"""The one exception tree of brokerbridge.

    BrokerBridgeError                 message + remedy (what to do) + retryable
    ├── ConfigError                   bad config file / env / flag; never retryable
    ├── TransportError                network: refused, reset, timeout, HTTP 5xx; retryable
    ├── ProtocolError                 the venue sent something we cannot parse
    ├── InternalError                 our bug: a message we failed to handle (skipped)
    └── VenueError                    the venue answered with an error string (`code`)
        ├── AuthenticationError       bad key / signature / credentials
        ├── InvalidNonce              nonce not increasing (retryable with a fresh nonce)
        ├── PermissionDenied          the key lacks a permission
        ├── SessionInvalid            WebSocket token stale/unknown (retryable: new token)
        ├── RateLimited               slow down (retryable)
        ├── ServiceUnavailable        venue down / maintenance / busy (retryable)
        ├── InvalidRequest            our arguments were wrong
        ├── UnknownSymbol
        ├── UnknownOrder
        └── OrderRejected             insufficient funds, minimums, tick size, limits

Foreign exceptions (httpx, websockets, OSError) are mapped to these once, at the I/O edge, with
`raise ... from`. Messages never contain secrets: build them from venue strings and our own text.
"""

from __future__ import annotations


class BrokerBridgeError(Exception):
    retryable: bool = False
    default_remedy: str = ""

    def __init__(self, message: str, *, remedy: str | None = None, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy if remedy is not None else self.default_remedy
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        return f"{self.message} — {self.remedy}" if self.remedy else self.message


class ConfigError(BrokerBridgeError):
    default_remedy = "fix the setting named above (see docs/configuration.md) and start again"


class TransportError(BrokerBridgeError):
    retryable = True
    default_remedy = "check the network and the venue URL; brokerbridge keeps retrying with backoff"


class ProtocolError(BrokerBridgeError):
    retryable = True
    default_remedy = "the venue sent an unexpected message; it was skipped (report it if it repeats)"


class InternalError(BrokerBridgeError):
    """Our bug, not the venue's: a message that decoded fine made our handling of it fail. Kept
    apart from `ProtocolError` so that a check accepting the venue's errors still sees ours."""

    default_remedy = "brokerbridge skipped a message it failed to handle (a bug): please report it"


class VenueError(BrokerBridgeError):
    def __init__(
        self,
        message: str,
        *,
        venue: str = "",
        code: str = "",
        remedy: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message, remedy=remedy, retryable=retryable)
        self.venue = venue
        self.code = code


class AuthenticationError(VenueError):
    default_remedy = "check the API key and secret (and that the key is enabled on the venue)"


class InvalidNonce(VenueError):
    retryable = True
    default_remedy = (
        "another client uses this API key with a larger nonce; give brokerbridge its own key "
        "or raise the key's nonce window"
    )


class PermissionDenied(VenueError):
    default_remedy = "enable the missing permission on the API key in the venue's key settings"


class SessionInvalid(VenueError):
    retryable = True
    default_remedy = "a fresh WebSocket token is requested automatically"


class RateLimited(VenueError):
    retryable = True
    default_remedy = "too many requests; brokerbridge backs off and retries"


class ServiceUnavailable(VenueError):
    retryable = True
    default_remedy = "the venue is down or in maintenance; brokerbridge retries and polls REST meanwhile"


class InvalidRequest(VenueError):
    default_remedy = "fix the request arguments"


class UnknownSymbol(VenueError):
    default_remedy = "use a symbol the venue lists (see `brokerbridge doctor` or the instruments channel)"


class UnknownOrder(VenueError):
    default_remedy = "the order id is unknown or already closed"


class OrderRejected(VenueError):
    default_remedy = "the venue refused the order; adjust size, price or balance"
