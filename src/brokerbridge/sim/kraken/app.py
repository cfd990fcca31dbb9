"""The Starlette application: REST, both WebSocket endpoints and the fault control endpoint on one port.

Routes: `/0/public/{method}` (GET, POST), `/0/private/{method}` (POST; GET answers Kraken's
`EGeneral:Invalid arguments`), WebSocket `/v2` (public) and `/auth/v2` (private), and
`GET/POST /_sim/faults`, `POST /_sim/faults/reset` for tests.
"""

from __future__ import annotations

import random

from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from brokerbridge.sim.kraken.exchange import KrakenExchange
from brokerbridge.sim.kraken.rest import KrakenRest
from brokerbridge.sim.kraken.ws import WsSession
from brokerbridge.sim.server import RestHandler, control_routes, with_body_faults


def build_app(exchange: KrakenExchange, sessions: set[WsSession]) -> Starlette:
    """`sessions` holds the live WebSocket sessions (the simulator drops them on a fault)."""
    rest = KrakenRest(exchange)
    # Connection ids as in the captures: 64-bit, often above 2^63.
    ids = random.Random(f"kraken-connections-{exchange.seed}")

    async def public_ws(websocket: WebSocket) -> None:
        await _serve(websocket, private=False)

    async def private_ws(websocket: WebSocket) -> None:
        await _serve(websocket, private=True)

    async def _serve(websocket: WebSocket, *, private: bool) -> None:
        session = WsSession(exchange, websocket, private=private, connection_id=ids.getrandbits(64))
        sessions.add(session)
        try:
            await session.run()
        finally:
            sessions.discard(session)

    def faulty(handler: RestHandler) -> RestHandler:
        return with_body_faults(handler, exchange.faults, exchange.clock)

    return Starlette(
        routes=[
            Route("/0/public/{method}", faulty(rest.handle_public), methods=["GET", "POST"]),
            Route("/0/private/{method}", faulty(rest.handle_private), methods=["GET", "POST"]),
            WebSocketRoute("/v2", public_ws),
            WebSocketRoute("/auth/v2", private_ws),
            *control_routes(exchange.faults),
        ]
    )
