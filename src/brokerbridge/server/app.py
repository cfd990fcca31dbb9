"""`create_app(bridge)`: the FastAPI app — `/api/*`, `/metrics`, sign-in (`/login`,
`/api/session`, `/api/token`), the dashboard at `/` (server/dashboard.py) — and the `/ws` gate.

`/ws` is not an ASGI route: `BridgeServer` hands uvicorn's WebSocket upgrades to server/wire.py
(frames written many at a time, issue 8), whose handshakes `state.gate` decides.

The app does not own the Bridge (its caller does: `serve`, tests); everything per-app (client
registry, metrics registry, codec) lives on `app.state`, nothing at module level.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import swagger_ui_bundle
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import Headers
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from brokerbridge.bridge import Bridge
from brokerbridge.core.clock import Clock
from brokerbridge.core.config import ServerConfig
from brokerbridge.server.auth import Authenticator, AuthThrottle, host_refusal
from brokerbridge.server.authorization import AuthorizationCodes
from brokerbridge.server.authorize_routes import make_router as make_authorize_router
from brokerbridge.server.clients import ClientRegistry
from brokerbridge.server.cors import CrossOrigin
from brokerbridge.server.dashboard import mount_dashboard
from brokerbridge.server.gate import ClientGate
from brokerbridge.server.login_routes import make_router as make_login_router
from brokerbridge.server.login_store import StateDir
from brokerbridge.server.logins import Logins
from brokerbridge.server.metrics import CONTENT_TYPE, ServerMetrics
from brokerbridge.server.order_desk import OrderDesk
from brokerbridge.server.order_routes import make_router as make_order_router
from brokerbridge.server.primary.rest import make_router as make_primary_router
from brokerbridge.server.protocol import Codec
from brokerbridge.server.rest import invalid_parameters, make_router, refusal, without_422
from brokerbridge.server.status_routes import make_router as make_status_router
from brokerbridge.server.token_routes import make_router as make_token_router
from brokerbridge.server.ws import WsSettings


@dataclass(frozen=True)
class ServerSettings:
    """What the app needs: the `[server]` config and the WebSocket tunables derived from it.
    `open_market_data` None means: open when bound to loopback (BridgeServer resolves it)."""

    config: ServerConfig = field(default_factory=ServerConfig)
    ws: WsSettings = field(default_factory=WsSettings)

    @classmethod
    def from_config(cls, config: ServerConfig) -> ServerSettings:
        return cls(
            config=config,
            ws=WsSettings(
                heartbeat_interval=config.heartbeat_interval,
                client_timeout=config.client_timeout,
                client_queue_size=config.client_queue_size,
                conflate_after=config.conflate_after,
                messages_per_second=config.messages_per_second,
                message_burst=config.message_burst,
                max_subscriptions=config.max_subscriptions,
                max_connections_per_key=config.max_connections_per_key,
                write_window=config.write_window_ms / 1000,
            ),
        )


@dataclass
class ServerState:
    bridge: Bridge
    settings: ServerSettings
    clients: ClientRegistry
    metrics: ServerMetrics
    codec: Codec
    auth: Authenticator
    logins: Logins
    gate: ClientGate  # the `/ws` handshake and its clients (BridgeServer serves it; see server/wire.py)
    orders: OrderDesk  # what /api/orders and the /ws order ops call; cancel-on-disconnect


def create_app(
    bridge: Bridge,
    settings: ServerSettings | None = None,
    *,
    loopback: bool = False,
    clock: Clock | None = None,
    host: str | None = None,
) -> FastAPI:
    """`loopback`: the server binds to a loopback address (market data is then open by default).
    `clock`: what logins, login codes, tokens and authentication lockouts run on (default: the
    Bridge's). `host`: the address it binds to (a Host header naming it is served)."""
    settings = settings or ServerSettings()
    config = settings.config
    clock = clock or bridge.clock
    open_market = config.open_market_data
    clients = ClientRegistry(clock)
    server_metrics = ServerMetrics(bridge, clients.stats)
    throttle = AuthThrottle(
        config.auth_failure_burst,
        config.auth_failure_interval,
        clock,
        on_failure=lambda via: server_metrics.auth_failures.labels(via).inc(),
        on_refused=lambda via: server_metrics.auth_refused.labels(via).inc(),
    )
    auth = Authenticator(
        config,
        open_market_data=loopback if open_market is None else open_market,
        clock=clock,
        bound_host=host,
        throttle=throttle,
    )
    app = FastAPI(
        title="brokerbridge",
        summary="One authenticated upstream per venue, many clients: WebSocket /ws, REST /api, /metrics.",
        version="0.1.0",
        docs_url=None,  # served below from the package's own copy of Swagger UI (no CDN)
        redoc_url=None,  # ReDoc would load its script from a CDN: not served
    )
    logins = Logins(
        StateDir(config.state_dir),
        ttl=config.session_ttl,
        clock=clock,
        token_ttl=config.access_token_ttl,
        token_renew_for=config.access_token_max_age,
    )
    codec = Codec()
    orders = OrderDesk(bridge, clock, config.keys)
    gate = ClientGate(bridge, settings.ws, auth, logins, clients, server_metrics, codec, orders)
    state = ServerState(bridge, settings, clients, server_metrics, codec, auth, logins, gate, orders)
    app.state.bridge = bridge
    app.state.server = state
    app.add_exception_handler(RequestValidationError, invalid_parameters)  # type: ignore[arg-type]
    app.openapi = _openapi_without_422(app)  # type: ignore[method-assign]
    app.include_router(make_router())
    app.include_router(make_order_router())
    app.include_router(make_login_router())
    codes = AuthorizationCodes(clock)  # the sign-in flow: /authorize issues, /api/tokens redeems
    app.include_router(make_token_router(codes))
    app.include_router(make_authorize_router(codes))
    app.include_router(make_status_router(started_at=clock.time()))
    app.include_router(make_primary_router())  # /primary/: Primary's REST API (server/primary/)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if (refused := refusal(request, "market")) is not None:
            return refused
        return Response(state.metrics.exposition(), media_type=CONTENT_TYPE)

    mount_docs(app)
    mount_dashboard(app)  # last: `/` and `/dashboard/` (the page's own routing is in the browser)
    app.add_middleware(CrossOrigin, auth=auth)  # CORS for /api and /primary (server/cors.py)
    app.add_middleware(HostCheck, auth=auth)  # added last: runs first
    return app


DOCS_ASSETS = "/docs/assets"


def mount_docs(app: FastAPI) -> None:
    """`/docs`: Swagger UI from the `swagger-ui-bundle-v2` package, under `/docs/assets/` — not
    from a CDN, so the page works offline and runs no third-party script on the server's origin
    (where the login cookie lives)."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
            oauth2_redirect_url=None,
            # Swagger UI would otherwise ask validator.swagger.io for a badge on a non-local URL.
            swagger_ui_parameters={"validatorUrl": None},
        )


class HostCheck:
    """Serve only requests whose Host header names this server (`Authenticator.host_allowed`):
    421 Misdirected Request with the setting to change, before any route runs. (`/ws` handshakes
    are checked by the gate: they do not pass through the ASGI app.)"""

    def __init__(self, app: ASGIApp, auth: Authenticator) -> None:
        self._app = app
        self._auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = Headers(scope=scope).get("host")
            if not self._auth.host_allowed(host):
                message, remedy = host_refusal(host)
                body = {"error": {"code": "invalid_request", "message": message, "remedy": remedy}}
                if scope["type"] == "http":
                    await JSONResponse(body, status_code=421)(scope, receive, send)
                else:
                    await send({"type": "websocket.close", "code": 1008})
                return
        await self._app(scope, receive, send)


def _openapi_without_422(app: FastAPI) -> Callable[[], dict[str, Any]]:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = without_422(generate())
        return app.openapi_schema

    return openapi
