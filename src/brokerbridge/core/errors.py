"""The one exception tree of brokerbridge.

    BrokerBridgeError                 message + remedy (what to do) + retryable
    ├── ConfigError                   bad config file / env / flag; never retryable
    ├── TransportError                network: refused, reset, timeout, HTTP 5xx; retryable
    │   └── NotSent                   refused before a byte was written: it never reached the venue
    ├── ProtocolError                 the venue sent something we cannot parse
    ├── InternalError                 our bug: a message we failed to handle (skipped)
    └── VenueError                    the venue answered with an error string (`code`)
        ├── AuthenticationError       bad key / signature / credentials
        ├── InvalidNonce              nonce not increasing (retryable with a fresh nonce)
        ├── PermissionDenied          the key lacks a permission
        │   └── NotAuthorized         the bridge server refused the caller's key (none, or no scope)
        ├── SessionInvalid            WebSocket token stale/unknown (retryable: new token)
        ├── RateLimited               slow down (retryable)
        ├── ServiceUnavailable        venue down / maintenance / busy (retryable)
        │   ├── NotLoaded             the account is not loaded yet (before its first snapshot)
        │   └── ClusterUnavailable    the cluster's Redis cannot be reached (retryable)
        ├── Fenced                    a write or venue action of a lease epoch no longer held
        ├── InvalidRequest            our arguments were wrong
        │   ├── UnknownVenue          a venue the bridge does not serve
        │   └── UnknownChannel        a channel that does not exist
        ├── UnknownSymbol
        ├── UnknownOrder
        └── OrderRejected             insufficient funds, minimums, tick size, limits

Foreign exceptions (httpx, websockets, OSError) are mapped to these once, at the I/O edge, with
`raise ... from`. Messages never contain secrets: build them from venue strings and our own text.

A caller gets the same class for the same mistake whichever way it came in: the `Bridge` raises
these in-process, the server answers them with the wire code of `WIRE_ERRORS` (the one table of
code ↔ class, used by `/ws`, `/api` and `brokerbridge.client`), and `BridgeClient` raises the class
of the code it receives (`error_from_wire`).
"""

from __future__ import annotations

import asyncio

import msgspec


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
    # Said inline: a user who installed with pip has no docs/ folder (`brokerbridge <command>
    # --help` is the reference every install has).
    default_remedy = (
        "fix the setting named above — in the config file (--config or $BROKERBRIDGE_CONFIG) or the "
        "BROKERBRIDGE_* variable that sets it — and start again"
    )


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
    default_code: str = ""  # a class whose errors all have one wire code names it here

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
        self.code = code or self.default_code


class NotSent(TransportError, VenueError):
    """A request refused before any byte of it was written to the venue's socket: it never
    reached the venue. Raised where that is certain — a cluster holder's `guarded` transports
    refusing because its lease lapsed (io/transports.py), a connection that could not be opened
    (io/http.py) — never for a request that may have gone out (that is a plain `TransportError`:
    its outcome is unknown). An order refused so is not journaled as unknown: its client order id
    is free, and the retry with the same id is placed once (services/orders.py). Also a
    `VenueError` (a wire code of its own, `not_sent`), retryable like every `TransportError`."""

    default_remedy = "nothing reached the venue: send it again (with the same client order id for an order)"
    default_code = "not_sent"


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


class NotAuthorized(PermissionDenied):
    default_remedy = "present an API key with the needed scope: BridgeClient(url, key=...)"


class SessionInvalid(VenueError):
    retryable = True
    default_remedy = "a fresh WebSocket token is requested automatically"


class RateLimited(VenueError):
    retryable = True
    default_remedy = "too many requests; brokerbridge backs off and retries"


class ServiceUnavailable(VenueError):
    retryable = True
    default_remedy = "the venue is down or in maintenance; brokerbridge retries and polls REST meanwhile"


class NotLoaded(ServiceUnavailable):
    """Account state asked for before the venue delivered its first snapshot of it: an empty
    answer would read as a zero balance."""

    default_remedy = "the account loads within seconds of start: wait until GET /api/ready answers 200"


class ClusterUnavailable(ServiceUnavailable):
    """The cluster's Redis did not answer (refused, reset, timed out): the venue's events, orders
    and lease live there, so for this node the venue is unavailable until it answers again. The
    message names the Redis by `describe_url` (io/cluster/keys.py), never by a URL that may carry
    its password."""

    default_remedy = (
        "check that Redis runs and that [cluster] redis_url (or serve --cluster URL) points at it; "
        "brokerbridge keeps retrying"
    )


class Fenced(VenueError):
    """A write or venue action stamped with a lease epoch that is no longer the venue's: another
    node holds the venue now (or nobody does yet, the lease having lapsed). The node that gets it
    stops acting for the venue at once — never retries the same write — and may campaign again for
    a new epoch. Not retryable as is: the caller's request goes to the current holder."""

    default_remedy = (
        "this node no longer holds the venue's session; send the request again: the node holding "
        "it now answers (brokerbridge status shows which)"
    )

    def __init__(
        self,
        message: str,
        *,
        venue: str = "",
        code: str = "fenced",
        remedy: str | None = None,
        retryable: bool | None = None,
        epoch: int | None = None,
        holder: str | None = None,
    ) -> None:
        super().__init__(message, venue=venue, code=code, remedy=remedy, retryable=retryable)
        self.epoch = epoch  # the refused epoch (None: not known to the receiver of a wire error)
        self.holder = holder  # "<node> <epoch>" holding the venue when refused; None: nobody

    @classmethod
    def refused(cls, venue: str, epoch: int | None, holder: str | None, *, what: str = "write") -> Fenced:
        """The error for `what` of `epoch` refused while `holder` ("<node> <epoch>", or None)
        holds `venue`'s lease."""
        now = f"node {holder.replace(' ', ' at epoch ', 1)} holds it now" if holder else "nobody holds it now"
        return cls(
            f"{venue}: a {what} of lease epoch {epoch} was refused: this node's lease is gone and {now}",
            venue=venue,
            epoch=epoch,
            holder=holder,
        )


class InvalidRequest(VenueError):
    default_remedy = "fix the request arguments"


class UnknownVenue(InvalidRequest):
    default_remedy = "use a venue the bridge serves (Bridge.connectors; remotely BridgeClient.venues())"


class UnknownChannel(InvalidRequest):
    default_remedy = (
        "channels: ticker, book, trades, candles, instruments, stats, balances, executions, positions"
    )


class UnknownSymbol(VenueError):
    default_remedy = "use a symbol the venue lists (see `brokerbridge doctor` or the instruments channel)"


class UnknownOrder(VenueError):
    default_remedy = "the order id is unknown or already closed"


class OrderRejected(VenueError):
    default_remedy = "the venue refused the order; adjust size, price or balance"


class OrderRefused(InvalidRequest):
    """Refused by the bridge before the venue saw it: `rule` names the rule broken (tick_size,
    lot_size, min_qty, min_notional, price_band, rate_limit, scope, …)."""

    default_remedy = "fix the order as the message says; nothing was sent to the venue"

    def __init__(
        self,
        message: str,
        *,
        rule: str = "",
        venue: str = "",
        code: str = "order_refused",
        remedy: str | None = None,
    ) -> None:
        super().__init__(message, venue=venue, code=code, remedy=remedy)
        self.rule = rule


class OrderConflict(InvalidRequest):
    """A client order id already used for another order (other symbol, side, qty, price...)."""

    default_remedy = "use a new client order id for a new order; resend the same arguments to retry one"


def fenced_cause(error: BaseException) -> Fenced | None:
    """The `Fenced` that `error` amounts to — itself, or an exception group (a task group's) whose
    every leaf is `Fenced` or a cancellation — else None. A holder that lost its lease stops on it:
    an expected end told in one line, never an internal error's traceback."""
    if isinstance(error, Fenced):
        return error
    if isinstance(error, BaseExceptionGroup):
        leaves = [e for e in _leaves(error) if not isinstance(e, asyncio.CancelledError)]
        if leaves and all(isinstance(e, Fenced) for e in leaves):
            first: Fenced = leaves[0]  # type: ignore[assignment]
            return first
    return None


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for error in group.exceptions:
        out.extend(_leaves(error) if isinstance(error, BaseExceptionGroup) else [error])
    return out


class WireError(msgspec.Struct, frozen=True):
    """One row of `WIRE_ERRORS`: an error a caller can get, as the server sends it."""

    code: str  # the `code` of a /ws `error` message and of an /api error body
    error: type[VenueError]  # what `BridgeClient` raises for `code`
    http_status: int  # /api's status for it
    sent_for: tuple[type[BrokerBridgeError], ...]  # the errors the server answers with `code`


# Subclasses before their bases: the first row whose `sent_for` an error is an instance of names it.
WIRE_ERRORS: tuple[WireError, ...] = (
    WireError(code="unknown_venue", error=UnknownVenue, http_status=404, sent_for=(UnknownVenue,)),
    WireError(code="unknown_channel", error=UnknownChannel, http_status=404, sent_for=(UnknownChannel,)),
    WireError(code="unknown_symbol", error=UnknownSymbol, http_status=404, sent_for=(UnknownSymbol,)),
    # The venue refusing the bridge's own key a permission is a refusal too (a NotAuthorized is a
    # PermissionDenied, so `except PermissionDenied` catches both ways in).
    WireError(code="not_authorized", error=NotAuthorized, http_status=403, sent_for=(PermissionDenied,)),
    WireError(code="rate_limited", error=RateLimited, http_status=429, sent_for=(RateLimited,)),
    WireError(code="not_loaded", error=NotLoaded, http_status=503, sent_for=(NotLoaded,)),
    WireError(
        code="cluster_unavailable",
        error=ClusterUnavailable,
        http_status=503,
        sent_for=(ClusterUnavailable,),
    ),
    # Nothing reached the venue (a holder whose lease lapsed, a venue not reachable): send it again.
    WireError(code="not_sent", error=NotSent, http_status=503, sent_for=(NotSent,)),
    # Another node holds the venue now: a 503 like any venue this node cannot serve at the moment.
    WireError(code="fenced", error=Fenced, http_status=503, sent_for=(Fenced,)),
    WireError(code="unavailable", error=ServiceUnavailable, http_status=503, sent_for=(ServiceUnavailable,)),
    WireError(code="order_refused", error=OrderRefused, http_status=422, sent_for=(OrderRefused,)),
    WireError(code="order_conflict", error=OrderConflict, http_status=409, sent_for=(OrderConflict,)),
    WireError(code="order_rejected", error=OrderRejected, http_status=422, sent_for=(OrderRejected,)),
    WireError(code="unknown_order", error=UnknownOrder, http_status=404, sent_for=(UnknownOrder,)),
    WireError(code="invalid_request", error=InvalidRequest, http_status=400, sent_for=(InvalidRequest,)),
    # Not JSON at all: found by the server's decoder, never raised as an exception.
    WireError(code="malformed", error=InvalidRequest, http_status=400, sent_for=()),
)


def wire_error_of(error: BaseException) -> WireError | None:
    """The row the server answers `error` with; None when no row names it (a `ConfigError` of the
    bridge, a `TransportError`…): the endpoint then says what it means there."""
    return next((row for row in WIRE_ERRORS if isinstance(error, row.sent_for)), None)


def error_from_wire(
    code: str, message: str, remedy: str = "", *, venue: str = "", rule: str = ""
) -> VenueError:
    """The exception for an error the server sent (an unknown code: a plain `VenueError`);
    `rule`: what an `order_refused` names (its `OrderRefused.rule`)."""
    kind = next((row.error for row in WIRE_ERRORS if row.code == code), VenueError)
    if kind is OrderRefused:
        return OrderRefused(message, rule=rule, venue=venue, code=code, remedy=remedy or None)
    return kind(message, venue=venue, code=code, remedy=remedy or None)
