"""The REST bodies of the bridge server's `/api/*` routes, as msgspec Structs.

The server builds and encodes these very types (and derives its OpenAPI schemas from them), and
`BridgeClient` decodes into them, so the two cannot disagree. Market data inside them are the
normalized events of `brokerbridge.core.events`, and health is `brokerbridge.core.health`'s Structs
(what `Bridge.health()` returns in process); Decimals travel as strings with the venue's digits.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar, Literal

import msgspec

from brokerbridge.core.events import (
    BookSnapshot,
    Candle,
    Fill,
    OrderUpdate,
    SessionStats,
    StreamState,
    Ticker,
    Trade,
)
from brokerbridge.core.health import HealthStatus
from brokerbridge.core.health import StreamHealth as StreamHealth  # the Bridge's own health types
from brokerbridge.core.health import VenueHealth as VenueHealth
from brokerbridge.core.health import VenueReadiness as VenueReadiness


class ErrorDetail(msgspec.Struct, frozen=True, kw_only=True):
    # `rule` is sent by the order routes only (the other routes' bodies predate it): optional in
    # /openapi.json (server/rest_models.py reads this).
    __wire_optional__: ClassVar[frozenset[str]] = frozenset({"rule"})

    code: str  # not_authorized, unknown_venue, unknown_symbol, invalid_request, unavailable, …
    message: str
    remedy: str = ""
    rule: str = ""  # order_refused: the rule broken (tick_size, lot_size, min_qty, rate_limit, …)


class ErrorResponse(msgspec.Struct, frozen=True, kw_only=True):
    error: ErrorDetail


class VenueSummary(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    # The user's credentials are configured. A simulated venue has none (its demo account is the
    # simulator's, not the user's) but an account all the same: balances, orders, fills.
    credentials: bool
    streams: dict[str, str]  # connection name → state
    simulated: bool = False  # an embedded simulator stands in for the venue: nothing here is real


class VenuesResponse(msgspec.Struct, frozen=True, kw_only=True):
    venues: list[VenueSummary]


class HealthResponse(msgspec.Struct, frozen=True, kw_only=True):
    status: HealthStatus  # degraded while a wanted stream is not live
    venues: dict[str, VenueHealth]


class ReadyResponse(msgspec.Struct, frozen=True, kw_only=True):
    """`/api/ready`: 200 with `ready` when every venue is, else 503 with `not_ready`."""

    status: Literal["ready", "not_ready"]
    venues: dict[str, VenueReadiness]  # per venue: starting | ready | degraded, why, what to do


class InstrumentsResponse(msgspec.Struct, frozen=True, kw_only=True):
    """Primary: catalogue rows (`source: catalog`); Kraken: `{"symbol"}` rows (`source: subscriptions`)."""

    venue: str
    source: str
    count: int
    instruments: list[dict[str, Any]]


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    asset: str
    total: Decimal
    hold: Decimal | None
    stale: bool  # the private stream is down: last known value
    updated_at: float


class BalancesResponse(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    balances: list[Balance]


class OrdersResponse(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    orders: list[OrderUpdate]


class FillsResponse(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    fills: list[Fill]


class TickerResponse(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    symbol: str
    state: StreamState
    ticker: Ticker | None
    stats: SessionStats | None  # when a stats stream of the symbol is open


class BookResponse(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    symbol: str
    depth: int
    state: StreamState
    book: BookSnapshot


class TradesResponse(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    symbol: str
    state: StreamState
    trades: list[Trade]  # oldest first


class CandlesResponse(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    symbol: str
    interval: int
    state: StreamState
    candles: list[Candle]  # oldest first


class BalanceFreshness(msgspec.Struct, frozen=True, kw_only=True):
    """How current a venue's balances are — never the amounts (`/api/balances` has those)."""

    assets: int  # balances held
    stale: int  # of those, marked stale (the account stream is down: last known values)
    updated_at: float | None  # wall time of the newest balance; None: none received yet


class VenueStatus(msgspec.Struct, frozen=True, kw_only=True):
    health: VenueHealth  # streams, token expiry, credentials: what /api/health says of the venue
    balances: BalanceFreshness


class ClientsSummary(msgspec.Struct, frozen=True, kw_only=True):
    """The `/ws` connections of the server."""

    connections: int
    by_key: dict[str, int]  # key name → connections; signed-in browsers and anonymous clients not listed
    unnamed: int  # connections without a key name (anonymous, or signed in by a login link)
    queued_messages: int  # messages waiting to be written, over every connection


class StatusResponse(msgspec.Struct, frozen=True, kw_only=True):
    """`GET /api/status`: what `brokerbridge status` shows of a running server."""

    version: str
    pid: int
    started_at: float  # wall time the server started
    now: float  # the server's wall time when it answered (ages are relative to it)
    status: HealthStatus  # as /api/health
    ready: bool | None = None  # as /api/ready where the server has it; None: not reported
    venues: dict[str, VenueStatus]
    clients: ClientsSummary


class LoginLinkResponse(msgspec.Struct, frozen=True, kw_only=True):
    """`POST /api/login-link`: a fresh one-time dashboard sign-in link (market + account)."""

    url: str  # /login?code=… on the address the caller used; works once
    expires_at: float  # wall time


class AmendBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`PATCH /api/orders/{venue}/{order_id}`: the new quantity and/or price (at least one)."""

    qty: Decimal | None = None
    price: Decimal | None = None
    client_order_id: str | None = None  # the order's, when the caller knows it


class SessionResponse(msgspec.Struct, frozen=True, kw_only=True):
    """`GET /api/session` (and `POST` to sign in): who is asking. `csrf_token`: a signed-in
    browser's token for the `X-CSRF-Token` header of its order requests (None otherwise)."""

    authenticated: bool
    name: str | None
    scopes: list[str]
    expires_at: float | None
    csrf_token: str | None = None
