"""REST under `/api/`: venues, health (liveness), ready (readiness), instruments, market snapshots
(ticker, book, trades, candles), option chains with their analytics (JSON or CSV:
server/option_csv.py), balances. Orders and fills: server/order_routes.py.

Bodies are the Structs of `brokerbridge.client.models`, encoded with msgspec (Decimals as strings,
exactly the venue's digits); `/openapi.json` describes them (rest_models.py). Mistakes answer with
a typed error body `{"error": {"code", "message", "remedy"}}` and a 4xx/5xx status.

Market snapshots answer from the Bridge's last-value cache when the stream is open; otherwise the
route opens it through the Bridge (it then lingers for the grace period, so the next call is
answered from memory) and waits up to `RestSettings.snapshot_wait_s` for its first data.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec

import msgspec
from fastapi import APIRouter, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from brokerbridge.bridge import Bridge, MarketSnapshot
from brokerbridge.client import models
from brokerbridge.core.errors import (
    WIRE_ERRORS,
    BrokerBridgeError,
    InvalidRequest,
    NotLoaded,
    ServiceUnavailable,
    UnknownSymbol,
    UnknownVenue,
    wire_error_of,
)
from brokerbridge.core.events import Channel, Subscription
from brokerbridge.core.health import overall_status
from brokerbridge.core.log_limit import clip
from brokerbridge.core.options.views import OptionChain
from brokerbridge.server.auth import Principal
from brokerbridge.server.logins import Denied, identify
from brokerbridge.server.option_csv import chain_csv, csv_filename
from brokerbridge.server.protocol import MAX_NAME_LENGTH, MAX_SYMBOL_LENGTH, PRINTABLE
from brokerbridge.server.rest_models import CatalogResponse, OpenApiModels, SymbolRow, SymbolsResponse
from brokerbridge.services.market_cache import CANDLES_KEPT, TRADES_KEPT
from brokerbridge.venues.defaults import book_depth

_encoder = msgspec.json.Encoder(decimal_format="string")


class JsonBody(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encoder.encode(content)


# Account answers (balances, orders, fills) must not be kept by a browser or a proxy cache.
NO_STORE = {"Cache-Control": "no-store"}


def _bridge(request: Request) -> Bridge:
    bridge: Bridge = request.app.state.bridge
    return bridge


def _error(
    status: int, code: str, message: str, remedy: str = "", headers: dict[str, str] | None = None
) -> JsonBody:
    body = {"error": {"code": code, "message": message, "remedy": remedy}}
    return JsonBody(body, status_code=status, headers=headers)


def refusal(request: Request, scope: str) -> JsonBody | None:
    """401 without a valid key, token or session when one is needed (or an invalid one), 429 while
    the client's address is locked out for failed authentications, 403 when it lacks `scope`;
    None: allowed."""
    state = request.app.state.server
    return refusal_of(identify(request, state.auth, state.logins), scope)


def refusal_of(principal: Principal | Denied, scope: str) -> JsonBody | None:
    """`refusal` for a caller already identified (a token is used up by `identify`: once a request)."""
    if isinstance(principal, Denied):
        return _error(
            principal.status, principal.code, principal.message, principal.remedy, principal.headers
        )
    if principal.allows(scope):
        return None
    if not principal.authenticated:
        return _error(
            401,
            "not_authorized",
            f"this needs an API key with the {scope!r} scope"
            + (f" ({principal.note})" if principal.note else ""),
            "send Authorization: Bearer <key> (or ?key=), or sign in (the /login link, POST /api/session)",
        )
    who = f"key {principal.name!r}" if principal.name else "this session"
    return _error(403, "not_authorized", f"{who} lacks the {scope!r} scope")


@dataclass(frozen=True)
class RestSettings:
    """Tunables of the REST routes; an app may set `app.state.rest_settings` to change them."""

    snapshot_wait_s: float = 5.0  # how long a snapshot of a stream not yet open waits for its data


class _Answer(Exception):
    """Answer the request with `response` now (a refusal or a mistake)."""

    def __init__(self, response: JsonBody) -> None:
        super().__init__(response.status_code)
        self.response = response


P = ParamSpec("P")


def _answers(route: Callable[P, Awaitable[Response]]) -> Callable[P, Awaitable[Response]]:
    """Let a route refuse by raising `_Answer` from any helper it calls."""

    @functools.wraps(route)
    async def answer(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return await route(*args, **kwargs)
        except _Answer as refused:
            return refused.response

    return answer


def _allowed(request: Request, scope: str) -> Bridge:
    """The Bridge, if the caller has `scope` (else a 401/403 answer)."""
    if (denied := refusal(request, scope)) is not None:
        raise _Answer(denied)
    return _bridge(request)


def _known_venue(bridge: Bridge, venue: str) -> None:
    try:
        bridge.connector(venue)
    except UnknownVenue as exc:
        raise _Answer(_refused(exc)) from None


def _refused(exc: BrokerBridgeError) -> JsonBody:
    """A mistake in the request, answered with the code and status the one table gives its class
    (core/errors.py `WIRE_ERRORS`); one the table names no code for is invalid_request."""
    wire = wire_error_of(exc) or _INVALID_REQUEST
    return _error(wire.http_status, wire.code, exc.message, exc.remedy)


def _unserved(exc: BrokerBridgeError) -> JsonBody:
    """The answer to a stream the request opened: a symbol the venue does not list or a request it
    calls wrong is the caller's mistake; anything else (no data in time, the venue refusing the
    bridge's own key) is the bridge unable to serve it now — 503, pointing at /api/health."""
    if isinstance(exc, UnknownSymbol | InvalidRequest):
        return _refused(exc)
    remedy = exc.remedy if isinstance(exc, ServiceUnavailable) else f"{exc.remedy} (see /api/health)"
    return _error(503, "unavailable", exc.message, remedy)


_INVALID_REQUEST = next(row for row in WIRE_ERRORS if row.code == "invalid_request")


# Query parameters whose value is a credential: never echoed in an error.
_SECRET_PARAMS = frozenset({"key", "token", "code"})


async def invalid_parameters(request: Request, exc: RequestValidationError) -> JsonBody:
    """FastAPI's checks of typed parameters (an integer out of range, not a number) answer with our
    typed 400 body, not its 422: one error shape for every mistake."""
    problems = []
    for error in exc.errors():
        where, *path = error.get("loc") or ("request",)
        name = ".".join(str(part) for part in path) or str(where)
        got = "" if where != "query" or name in _SECRET_PARAMS else f", got {clip(error.get('input'), 60)}"
        problems.append(f"{name}: {str(error.get('msg', 'invalid')).lower()}{got}")
    return _error(400, "invalid_request", "; ".join(problems), "see /docs for this route's parameters")


def without_422(schema: dict[str, Any]) -> dict[str, Any]:
    """`/openapi.json` as the API answers: FastAPI documents a 422 on every route with parameters,
    but `invalid_parameters` answers those with the typed 400 each route declares."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            # A route's own 422 (order_refused, order_rejected: server/order_routes.py) stays.
            if "HTTPValidationError" in str(responses.get("422", "")):
                del responses["422"]
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


async def _snapshot_of(
    request: Request, venue: str, channel: Channel, symbol: str | None, *, depth: int = 10, interval: int = 1
) -> tuple[Subscription, MarketSnapshot]:
    """Check the request, then make sure the Bridge holds the stream's last values."""
    bridge = _allowed(request, "market")
    _known_venue(bridge, venue)
    if not symbol:
        raise _Answer(
            _error(400, "invalid_request", "symbol is required", "add ?symbol=… (the venue's symbol)")
        )
    try:  # a symbol not in the venue's catalogue is refused here, before going upstream
        sub = bridge.subscription(venue, channel, symbol, depth=depth, interval=interval)
    except BrokerBridgeError as exc:
        raise _Answer(_refused(exc)) from None
    settings: RestSettings = getattr(request.app.state, "rest_settings", None) or RestSettings()
    try:
        snapshot = await bridge.market_snapshot(sub, wait_s=settings.snapshot_wait_s)
    except BrokerBridgeError as exc:
        raise _Answer(_unserved(exc)) from None
    return sub, snapshot


# Client-given strings are bounded and printable, as on /ws (server/protocol.py): refused with a
# typed 400 before a route reads them.
_SYMBOL = Query(
    None,
    min_length=1,
    max_length=MAX_SYMBOL_LENGTH,
    pattern=PRINTABLE,
    description="the venue's symbol: BTC/USD (Kraken), 'MERV - XMEV - GGAL - 24hs' (Primary)",
)
_VENUE = Path(max_length=MAX_NAME_LENGTH, pattern=PRINTABLE, description="kraken or primary")
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"


def make_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["api"])
    schemas = OpenApiModels()
    ok = schemas.responses

    @router.get(
        "/venues",
        summary="Configured venues and the state of their streams",
        responses=ok(models.VenuesResponse, 401, 429),
    )
    @_answers
    async def venues(request: Request) -> Response:
        bridge = _allowed(request, "market")
        rows = [
            models.VenueSummary(
                venue=venue,
                credentials=health.credentials,
                streams={name: s.state for name, s in health.streams.items()},
                simulated=health.simulated,
            )
            for venue, health in bridge.health().items()
        ]
        return JsonBody(models.VenuesResponse(venues=rows))

    @router.get(
        "/health",
        summary="Per venue and stream: state, mode, reconnects, message age, token expiry",
        responses=ok(models.HealthResponse, 401, 429),
    )
    @_answers
    async def health(request: Request) -> Response:
        venues = _allowed(request, "market").health()
        return JsonBody(models.HealthResponse(status=overall_status(venues.values()), venues=venues))

    @router.get(
        "/ready",
        summary="Readiness: 200 once every venue's account is loaded and live, else 503 with why",
        responses=ok(models.ReadyResponse, 401, 429) | {503: {"model": schemas.of(models.ReadyResponse)}},
    )
    @_answers
    async def ready(request: Request) -> Response:
        venues = _allowed(request, "market").readiness()
        ready = all(readiness.ready for readiness in venues.values())
        return JsonBody(
            models.ReadyResponse(status="ready" if ready else "not_ready", venues=venues),
            status_code=200 if ready else 503,
            headers=NO_STORE,
        )

    @router.get(
        "/instruments",
        summary="Instruments: Primary's catalogue; Kraken: the symbols in use",
        responses=ok((CatalogResponse, SymbolsResponse), 401, 404, 429, 503),
    )
    @_answers
    async def instruments(
        request: Request,
        venue: str = Query(
            ..., max_length=MAX_NAME_LENGTH, pattern=PRINTABLE, description="kraken or primary"
        ),
        search: str = Query(
            "", max_length=MAX_SYMBOL_LENGTH, description="case-insensitive substring of symbol/ticker"
        ),
    ) -> Response:
        bridge = _allowed(request, "market")
        _known_venue(bridge, venue)
        if venue == "primary":
            try:
                catalog = await bridge.catalog(venue)
            except BrokerBridgeError as exc:
                return _error(503, "unavailable", exc.message, exc.remedy)
            details = catalog.search(search)
            return JsonBody(
                CatalogResponse(venue=venue, source="catalog", count=len(details), instruments=details)
            )
        # Kraken: the symbols this bridge currently streams (the AssetPairs listing is not exposed yet).
        symbols = sorted(
            {
                sub.split(":")[2]
                for stream in bridge.health()[venue].streams.values()
                for sub in stream.subscriptions
                if len(sub.split(":")) > 2
            }
        )
        needle = search.strip().lower()
        rows = [SymbolRow(symbol=s) for s in symbols if needle in s.lower()]
        return JsonBody(
            SymbolsResponse(venue=venue, source="subscriptions", count=len(rows), instruments=rows)
        )

    @router.get(
        "/ticker/{venue}",
        summary="The current ticker (and session stats when a stats stream is open)",
        responses=ok(models.TickerResponse, 400, 401, 404, 429, 503),
    )
    @_answers
    async def ticker(request: Request, venue: str = _VENUE, symbol: str | None = _SYMBOL) -> Response:
        sub, snapshot = await _snapshot_of(request, venue, Channel.TICKER, symbol)
        return JsonBody(
            models.TickerResponse(
                venue=venue,
                symbol=sub.symbol or "",
                state=snapshot.status.state,
                ticker=snapshot.ticker,
                stats=snapshot.stats,
            )
        )

    @router.get(
        "/book/{venue}",
        summary="The current order book (checksum-verified where the venue has checksums)",
        responses=ok(models.BookResponse, 400, 401, 404, 429, 503),
    )
    @_answers
    async def book(
        request: Request,
        venue: str = _VENUE,
        symbol: str | None = _SYMBOL,
        depth: int | None = Query(
            None, ge=1, le=1000, description="levels per side: Kraken 10/25/100/500/1000, Primary 1..5"
        ),
    ) -> Response:
        levels = book_depth(venue, depth)
        sub, snapshot = await _snapshot_of(request, venue, Channel.BOOK, symbol, depth=levels)
        if snapshot.book is None:  # pragma: no cover - the snapshot was taken because the book was there
            return _error(503, "unavailable", f"no book for {sub.describe()} right now", "try again shortly")
        return JsonBody(
            models.BookResponse(
                venue=venue,
                symbol=sub.symbol or "",
                depth=levels,
                state=snapshot.status.state,
                book=snapshot.book,
            )
        )

    @router.get(
        "/trades/{venue}",
        summary=f"Recent trades seen on the stream, oldest first (up to {TRADES_KEPT} kept per symbol)",
        responses=ok(models.TradesResponse, 400, 401, 404, 429, 503),
    )
    @_answers
    async def trades(
        request: Request,
        venue: str = _VENUE,
        symbol: str | None = _SYMBOL,
        limit: int = Query(50, ge=1, le=TRADES_KEPT, description="how many, the newest"),
    ) -> Response:
        sub, snapshot = await _snapshot_of(request, venue, Channel.TRADES, symbol)
        return JsonBody(
            models.TradesResponse(
                venue=venue,
                symbol=sub.symbol or "",
                state=snapshot.status.state,
                trades=snapshot.trades[-limit:],
            )
        )

    @router.get(
        "/candles/{venue}",
        summary=f"Recent candles, oldest first (up to {CANDLES_KEPT} kept per symbol and interval)",
        responses=ok(models.CandlesResponse, 400, 401, 404, 429, 503),
    )
    @_answers
    async def candles(
        request: Request,
        venue: str = _VENUE,
        symbol: str | None = _SYMBOL,
        interval: int = Query(
            1, ge=1, le=21600, description="minutes (Kraken: 1 5 15 30 60 240 1440 10080 21600)"
        ),
        limit: int = Query(100, ge=1, le=CANDLES_KEPT, description="how many, the newest"),
    ) -> Response:
        sub, snapshot = await _snapshot_of(request, venue, Channel.CANDLES, symbol, interval=interval)
        return JsonBody(
            models.CandlesResponse(
                venue=venue,
                symbol=sub.symbol or "",
                interval=interval,
                state=snapshot.status.state,
                candles=snapshot.candles[-limit:],
            )
        )

    @router.get(
        "/options/{venue}/{underlying}",
        summary="An underlying's option chain with implied volatilities, greeks and implied rates "
        "(?format=csv: one row per option)",
        responses=ok(OptionChain, 400, 401, 404, 429, 503)
        | {200: {"model": schemas.of(OptionChain), "content": {"text/csv": {}}}},
    )
    @_answers
    async def options(
        request: Request,
        venue: str = _VENUE,
        underlying: str = Path(
            max_length=MAX_SYMBOL_LENGTH,
            pattern=PRINTABLE,
            description="the underlying's ticker, e.g. GGAL (Primary: BYMA equity options)",
        ),
        expiry: str | None = Query(
            None, pattern=_ISO_DATE, description="one expiry, an ISO date (default: every listed expiry)"
        ),
        model: Literal["american", "european"] | None = Query(
            None,
            description="american (Bjerksund–Stensland 2002) or european (Black–Scholes–Merton); "
            "default: the server's [options] model",
        ),
        output: Literal["json", "csv"] = Query(
            "json", alias="format", description="csv: one row per option, a header row, '.' decimals"
        ),
    ) -> Response:
        bridge = _allowed(request, "market")
        _known_venue(bridge, venue)
        if expiry is not None:
            try:
                dt.date.fromisoformat(expiry)
            except ValueError:
                raise _Answer(
                    _error(
                        400,
                        "invalid_request",
                        f"expiry {expiry!r} is not a date",
                        "YYYY-MM-DD, e.g. 2026-12-18",
                    )
                ) from None
        settings: RestSettings = getattr(request.app.state, "rest_settings", None) or RestSettings()
        try:
            chain = await bridge.option_chain(
                venue, underlying, expiry=expiry, model=model, wait_s=settings.snapshot_wait_s
            )
        except BrokerBridgeError as exc:
            raise _Answer(_unserved(exc)) from None
        if output == "json":
            return JsonBody(chain)
        return Response(
            chain_csv(chain),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{csv_filename(chain, expiry)}"'},
        )

    @router.get(
        "/balances/{venue}",
        summary="Balances (stale while the private stream is down; 503 not_loaded before the first snapshot)",
        responses=ok(models.BalancesResponse, 400, 401, 403, 404, 429, 503),
    )
    @_answers
    async def balances(request: Request, venue: str = _VENUE) -> Response:
        bridge = _allowed(request, "account")
        _known_venue(bridge, venue)
        try:
            views = bridge.balances(venue)
        except NotLoaded as exc:  # never an empty list: it would read as a zero balance
            return _refused(exc)
        rows = [
            models.Balance(asset=v.asset, total=v.total, hold=v.hold, stale=v.stale, updated_at=v.updated_at)
            for v in views.values()
        ]
        return JsonBody(models.BalancesResponse(venue=venue, balances=rows), headers=NO_STORE)

    return router
