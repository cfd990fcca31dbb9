"""What the local tools ask of a running server: `GET /api/status` (venues, streams, token
expiries, balance freshness, connected clients — `brokerbridge status`) and `POST /api/login-link`
(a fresh one-time dashboard sign-in link — `brokerbridge login-link`).

Both are for the machine's owner, not for every client: they answer a caller on this machine
(a loopback address, with no proxy header — behind a reverse proxy on the same host every request
comes from loopback, so a forwarded one is not taken as local) or a caller with an `admin` key.
A link is minted the way `serve`'s printed one is (server/logins.py: market + account, 10 minutes,
once), so whoever may ask for one could have read `serve`'s output anyway.
"""

from __future__ import annotations

import os

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from brokerbridge import __version__
from brokerbridge.bridge import Bridge
from brokerbridge.client import models
from brokerbridge.core.errors import ConfigError, NotLoaded
from brokerbridge.core.health import overall_status
from brokerbridge.server.auth import is_loopback
from brokerbridge.server.login_routes import cross_origin_refusal
from brokerbridge.server.logins import CODE_TTL, Denied, client_address, identify
from brokerbridge.server.rest import NO_STORE, JsonBody
from brokerbridge.server.rest_models import OpenApiModels

# Headers a reverse proxy adds: a request carrying one came through a proxy, whatever its address.
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")
LOCAL_ONLY_REMEDY = (
    "run the command on the machine `brokerbridge serve` runs on (it connects over loopback), or "
    "send Authorization: Bearer <a key with the admin scope> ([client] key / BROKERBRIDGE_CLIENT_KEY)"
)


def _error(
    status: int, code: str, message: str, remedy: str = "", headers: dict[str, str] | None = None
) -> Response:
    body = models.ErrorResponse(error=models.ErrorDetail(code=code, message=message, remedy=remedy))
    return JsonBody(body, status_code=status, headers={**NO_STORE, **(headers or {})})


def is_local(request: Request) -> bool:
    """The caller is on this machine: a loopback peer address and no proxy in between."""
    return is_loopback(client_address(request)) and not any(h in request.headers for h in PROXY_HEADERS)


def owner_refusal(request: Request, what: str) -> Response | None:
    """None when the caller may have `what`: a local caller, or one with an admin key (a bad key
    is refused even from loopback: a credential presented is checked, never ignored)."""
    state = request.app.state.server
    principal = identify(request, state.auth, state.logins)
    if isinstance(principal, Denied):
        return _error(
            principal.status, principal.code, principal.message, principal.remedy, principal.headers
        )
    if principal.allows("admin") or is_local(request):
        return None
    who = (
        f"key {principal.name!r}"
        if principal.name
        else "this session"
        if principal.authenticated
        else "an anonymous caller"
    )
    status = 403 if principal.authenticated else 401
    return _error(
        status,
        "not_authorized",
        f"{what} is only for a caller on this machine or with an admin key; {who} from "
        f"{client_address(request)} is neither",
        LOCAL_ONLY_REMEDY,
    )


def status_of(bridge: Bridge, clients: models.ClientsSummary, started_at: float) -> models.StatusResponse:
    health = bridge.health()
    venues = {}
    for venue, venue_health in health.items():
        try:
            balances = bridge.balances(venue).values()
        except NotLoaded:  # no snapshot yet: readiness says why
            balances = {}.values()
        stamps = [b.updated_at for b in balances]
        venues[venue] = models.VenueStatus(
            health=venue_health,
            balances=models.BalanceFreshness(
                assets=len(stamps),
                stale=sum(1 for b in balances if b.stale),
                updated_at=max(stamps) if stamps else None,
            ),
        )
    return models.StatusResponse(
        version=__version__,
        pid=os.getpid(),
        started_at=started_at,
        now=bridge.clock.time(),
        status=overall_status(health.values()),
        ready=all(readiness.ready for readiness in bridge.readiness().values()),
        venues=venues,
        clients=clients,
    )


def make_router(started_at: float) -> APIRouter:
    """`/api/status` and `/api/login-link`; `started_at`: the server's start (wall time)."""
    router = APIRouter(prefix="/api", tags=["local tools"])
    ok = OpenApiModels().responses

    @router.get(
        "/status",
        summary="Venues, streams, token expiries, balance freshness and connected clients "
        "(this machine or an admin key)",
        responses=ok(models.StatusResponse, 401, 403, 429),
    )
    async def status(request: Request) -> Response:
        if (refused := owner_refusal(request, "/api/status")) is not None:
            return refused
        state = request.app.state.server
        connected = state.clients.clients()
        by_key: dict[str, int] = {}
        for client in connected:
            if client.principal.name is not None:
                by_key[client.principal.name] = by_key.get(client.principal.name, 0) + 1
        clients = models.ClientsSummary(
            connections=len(connected),
            by_key=by_key,
            unnamed=len(connected) - sum(by_key.values()),
            queued_messages=sum(client.queue_depth for client in connected),
        )
        return JsonBody(status_of(state.bridge, clients, started_at), headers=NO_STORE)

    @router.post(
        "/login-link",
        summary="A fresh one-time dashboard sign-in link, market + account (+ trade with ?trade=true), "
        "valid 10 min "
        "(this machine or an admin key)",
        responses=ok(models.LoginLinkResponse, 401, 403, 429, 503),
    )
    async def login_link(
        request: Request,
        trade: bool = Query(False, description="the session may also place orders (trade scope)"),
    ) -> Response:
        if (foreign := cross_origin_refusal(request)) is not None:
            return foreign  # a web page must not make links for itself
        if (refused := owner_refusal(request, "a login link")) is not None:
            return refused
        state = request.app.state.server
        if trade and not is_local(request):
            # admin does not grant trade (core/config.py): a remote admin key without trade must
            # not make itself a trading session through a link.
            principal = identify(request, state.auth, state.logins)
            if isinstance(principal, Denied) or not principal.allows("trade"):
                return _error(
                    403,
                    "not_authorized",
                    "a trading login link needs a key with the trade scope (or a caller on this machine)",
                    "add trade to the key's scopes in [server] keys, or run login-link on the "
                    "server's machine",
                )
        logins = state.logins
        try:
            logins.ensure_signing_key()
            code = logins.mint_code(trade=trade)
        except ConfigError as exc:  # the state_dir cannot hold the signing key
            return _error(503, "unavailable", exc.message, exc.remedy)
        except OverflowError:
            return _error(429, "rate_limited", "too many unused login links", "use one, or wait 10 minutes")
        expires_at = logins.now() + CODE_TTL
        base = str(request.base_url).rstrip("/")
        body = models.LoginLinkResponse(url=f"{base}/login?code={code}", expires_at=expires_at)
        return JsonBody(body, headers={**NO_STORE, "Referrer-Policy": "no-referrer"})

    return router
