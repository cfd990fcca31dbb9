"""Who may open `/ws`: the WebSocket handshake's checks, and the `ClientConnection` made when they pass.

Refusals are HTTP answers to the handshake with a typed JSON body (status + `error.code`, message,
remedy), as the REST API answers: 421 for a Host header that does not name this server, 404 for
another path, 403 for a foreign Origin (logged at WARNING with the setting to change), 401 for a
bad key or token, 429 when the key has `max_connections_per_key` connections already or the
client's address failed to authenticate too often (with Retry-After). A listed origin's page is
not served the login cookie's authority (it connects with a token), as on `/api` (server/cors.py).
`/primary/` (and `/primary`) passes the same Host and Origin checks, then goes to
server/primary/ws.py, which refuses as Primary does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

from starlette.requests import HTTPConnection
from websockets.http11 import Request, Response

from brokerbridge.bridge import Bridge
from brokerbridge.core.log_limit import clip
from brokerbridge.server.auth import Authenticator, Principal, host_refusal, same_origin
from brokerbridge.server.clients import ClientRegistry
from brokerbridge.server.coalesce import Coalescer
from brokerbridge.server.cors import without_login_cookie
from brokerbridge.server.hub import Hubs
from brokerbridge.server.logins import Denied, Logins, identify
from brokerbridge.server.metrics import ServerMetrics
from brokerbridge.server.order_desk import OrderDesk
from brokerbridge.server.primary.ws import PATHS as PRIMARY_PATHS
from brokerbridge.server.primary.ws import PrimaryEndpoint
from brokerbridge.server.protocol import Codec
from brokerbridge.server.wire import Peer, WsWire, json_response
from brokerbridge.server.ws import ClientConnection, WsSettings

PATH = "/ws"


class ClientGate:
    def __init__(
        self,
        bridge: Bridge,
        settings: WsSettings,
        auth: Authenticator,
        logins: Logins,
        clients: ClientRegistry,
        metrics: ServerMetrics,
        codec: Codec,
        orders: OrderDesk,
    ) -> None:
        self._bridge = bridge
        self._orders = orders
        self._settings = settings
        self._auth = auth
        self._logins = logins
        self._clients = clients
        self._metrics = metrics
        self._codec = codec
        self.coalescer = Coalescer(settings.write_window)
        self.hubs = Hubs(
            bridge,
            codec,
            self.coalescer,
            keep=settings.client_queue_size,
            conflate_after=min(settings.conflate_after, settings.client_queue_size),
            on_conflated=self._conflated,
        )
        # `/primary/`: Primary's WebSocket protocol, same checks up to who is asking.
        self.primary = PrimaryEndpoint(bridge, settings, clients, self.coalescer, orders)
        self.max_message_bytes = settings.max_message_bytes
        self.close_timeout = settings.close_timeout

    def protocol_factory(self) -> Callable[..., WsWire]:
        """What uvicorn makes for every WebSocket upgrade (`uvicorn.Config(ws=…)`)."""

        def make(*, server_state: Any = None, **_uvicorn: Any) -> WsWire:
            return WsWire(self, server_state)

        return make

    def admit(self, request: Request, address: str) -> Response | Callable[[WsWire], Peer]:
        path, _, query = request.path.partition("?")
        headers = request.headers
        if not self._auth.host_allowed(headers.get("Host")):
            return _denial(421, "invalid_request", *host_refusal(headers.get("Host")))
        primary = path in PRIMARY_PATHS
        if path != PATH and not primary:
            return _denial(
                404, "not_found", f"no WebSocket endpoint at {clip(path, 80)}", f"connect to {PATH}"
            )
        origin = headers.get("Origin")
        if not self._auth.origin_allowed(origin, headers.get("Host")):
            assert origin is not None  # no Origin is allowed (not a browser)
            self._auth.origin_refused(origin, "WebSocket handshake", path)
            return _denial(
                403,
                "not_authorized",
                f"Origin {clip(origin, 80)} is not allowed",
                "connect from the same origin, or add it to server.allowed_origins "
                "(BROKERBRIDGE_SERVER_ALLOWED_ORIGINS)",
            )
        # A key, a token (used up here) or the login cookie; a bad cookie only means anonymous.
        # The cookie is a same-origin credential: a listed origin's page connects with a token
        # (as on /api: server/cors.py).
        foreign = origin is not None and not same_origin(origin, headers.get("Host"))
        connection = _as_connection(request, path, query, address, cookie=not foreign)
        principal = identify(connection, self._auth, self._logins)
        if primary:
            return self.primary.admit(principal)
        if isinstance(principal, Denied):
            return _denial(
                principal.status, principal.code, principal.message, principal.remedy, principal.headers
            )
        limit = self._settings.max_connections_per_key
        if principal.name is not None and self._clients.connections_of(principal.name) >= limit:
            return _denial(
                429,
                "rate_limited",
                f"too many connections for key {principal.name!r} (limit {limit})",
                "close another connection using this key (server.max_connections_per_key)",
            )
        return partial(self._connect, principal)

    def _conflated(self, kind: str, count: int) -> None:
        self._metrics.out.conflated[kind] += count

    def _connect(self, principal: Principal, wire: WsWire) -> ClientConnection:
        client = ClientConnection(
            wire,
            self._bridge,
            self._metrics,
            self._codec,
            self._settings,
            self._auth,
            principal,
            self._clients,
            self.coalescer,
            self.hubs,
            self._orders,
        )
        self._clients.add(client)
        return client


_REASONS = {
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    421: "Misdirected Request",
    429: "Too Many Requests",
}


def _denial(
    status: int, code: str, message: str, remedy: str, headers: dict[str, str] | None = None
) -> Response:
    body = json.dumps({"error": {"code": code, "message": message, "remedy": remedy}}).encode()
    return json_response(status, _REASONS[status], body, headers)


def _as_connection(
    request: Request, path: str, query: str, address: str, *, cookie: bool = True
) -> HTTPConnection:
    """The handshake as Starlette sees a request: what `logins.identify` reads (headers, query,
    cookies, the client's address); `cookie` False: without the login cookie."""
    scope: dict[str, Any] = {
        "type": "websocket",
        "path": path,
        "client": (address, 0),
        "query_string": query.encode("latin-1"),
        "headers": [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in request.headers.raw_items()
        ],
    }
    return HTTPConnection(scope if cookie else without_login_cookie(scope))
