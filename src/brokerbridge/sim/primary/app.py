"""The Starlette application: REST, the WebSocket at `/` and the fault control endpoint on one port.

Routes: `POST /auth/getToken`, `GET /auth/removeToken`, `GET /rest/{path}`, WebSocket `/` (an HTTP
`GET /` without upgrade headers answers `Ruta invalida` instead of failing), and
`GET/POST /_sim/faults`, `POST /_sim/faults/reset`, `GET /_sim/stats` (usage.py: logins, tokens,
sockets, calls and frames the venue saw).

Handshake (§2.2, §10.3 — a choice): the token is read from `X-Auth-Token` (with or without a space
after the colon; the header parser strips it); a missing/unknown/expired/revoked token is refused
before the upgrade with HTTP 401 and a JSON body; the `reject_ws_handshake` fault refuses with 503.
Both are non-101 answers, which websocket-client reports as `WebSocketBadStatusException`.
"""

from __future__ import annotations

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from brokerbridge.sim.primary.activity import ActivityLog
from brokerbridge.sim.primary.exchange import PrimaryExchange
from brokerbridge.sim.primary.rest import UNAUTHORIZED, PrimaryRest, json_response
from brokerbridge.sim.primary.ws import WsSession
from brokerbridge.sim.server import RestHandler, control_routes, with_body_faults

HANDSHAKE_UNAVAILABLE = {
    "status": "ERROR",
    "message": "Service Unavailable",
    "description": "Try again later",
}


def build_app(exchange: PrimaryExchange, sessions: set[WsSession], activity: ActivityLog) -> Starlette:
    """`sessions` holds the live WebSocket sessions (the simulator drops them on a fault)."""
    rest = PrimaryRest(exchange)

    async def deny(websocket: WebSocket, response: Response) -> None:
        try:
            await websocket.send_denial_response(response)
        except RuntimeError:  # a server without the denial extension: close before accept (403)
            await websocket.close()

    async def socket(websocket: WebSocket) -> None:
        if exchange.faults.take("reject_ws_handshake"):
            await deny(websocket, json_response(HANDSHAKE_UNAVAILABLE, status=503))
            return
        token = exchange.authorised(websocket.headers.get("x-auth-token"))
        if token is None:
            exchange.usage.refused_handshakes += 1
            await deny(websocket, json_response(UNAUTHORIZED, status=401))
            return
        session = WsSession(
            exchange,
            websocket,
            token=token.value,
            user=token.user,
            last_activity=lambda: activity.last(websocket.client),
        )
        sessions.add(session)
        exchange.socket_opened(token.value)
        try:
            await session.run()
        finally:
            exchange.socket_closed(token.value)
            sessions.discard(session)
            activity.forget(websocket.client)

    async def root(request: Request) -> Response:
        return json_response({"status": "ERROR", "description": "Ruta invalida", "message": ""})

    async def stats(request: Request) -> Response:
        """What the venue saw of its clients (`UsageStats`): one process holding the session for
        every client logs in once, keeps one token in use and one socket open."""
        return Response(msgspec.json.encode(exchange.usage_stats()), media_type="application/json")

    def faulty(handler: RestHandler) -> RestHandler:
        return with_body_faults(handler, exchange.faults, exchange.clock)

    return Starlette(
        routes=[
            WebSocketRoute("/", socket),
            Route("/", root, methods=["GET", "HEAD", "POST"]),
            Route("/auth/getToken", faulty(rest.get_token), methods=["POST"]),
            Route("/auth/removeToken", faulty(rest.remove_token), methods=["GET", "POST"]),
            Route("/rest/{path:path}", faulty(rest.handle), methods=["GET", "POST"]),
            *control_routes(exchange.faults),
            Route("/_sim/stats", stats, methods=["GET"]),
        ]
    )
