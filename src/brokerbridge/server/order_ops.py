"""The `/ws` order ops of one connection: `place`, `cancel`, `amend`.

Each op needs the `trade` scope (of the key, or of a signed-in browser: a cross-site page cannot
open `/ws` with the cookie — the handshake checks Origin, server/gate.py). It runs as a task the
server's `OrderDesk` owns (the connection has no task of its own, and an op waits for the venue),
and is answered by an `ack` carrying the request's `id` and the `OrderAck`/`CancelAck`
(protocol.py `OrderAnswer`), or an `error` with the same `id` and the code `/api/orders` answers
with (core/errors.py `WIRE_ERRORS`; `order_refused` with its `rule`). Answers may come in another
order than the requests: match them by `id`.
"""

from __future__ import annotations

import logging
from typing import Protocol

from brokerbridge.core.errors import BrokerBridgeError, OrderRefused, TransportError, wire_error_of
from brokerbridge.core.orders import OrderAck
from brokerbridge.server.auth import Principal
from brokerbridge.server.order_desk import OrderDesk
from brokerbridge.server.protocol import Amend, Cancel, ErrorCode, OrderAnswer, Outgoing, Place, RequestId

logger = logging.getLogger(__name__)


class Connection(Protocol):
    """What the ops need of their connection (server/ws.py's `ClientConnection`)."""

    @property
    def principal(self) -> Principal: ...

    def send(self, message: Outgoing) -> None: ...

    def send_error(
        self, code: ErrorCode, message: str, request_id: RequestId | None, remedy: str = "", rule: str = ""
    ) -> None: ...


class OrderOps:
    def __init__(self, connection: Connection, desk: OrderDesk) -> None:
        self._connection = connection
        self._desk = desk
        # The key this connection counts for in cancel-on-disconnect (None: not counted).
        self._counted: str | None = None
        self.opened()

    def opened(self) -> None:
        """The connection opened, or now speaks for another key (an `auth` message)."""
        self._counted = self._connection.principal.name
        self._desk.opened(self._counted)

    def closed(self) -> None:
        counted, self._counted = self._counted, None
        self._desk.closed(counted)

    def handle(self, request: Place | Cancel | Amend) -> None:
        connection = self._connection
        if not connection.principal.allows("trade"):
            who = connection.principal.name
            connection.send_error(
                ErrorCode.NOT_AUTHORIZED,
                f"{type(request).__name__.lower()} needs the 'trade' scope"
                + (f" (key {who!r} lacks it)" if who else " (no API key with it presented)"),
                request.id,
                'present a key with the trade scope: Authorization: Bearer <key>, ?key=, or {"op": "auth"}',
            )
            return
        self._desk.run(self._answer(request), f"ws {type(request).__name__.lower()} {request.id!r}")

    async def _answer(self, request: Place | Cancel | Amend) -> None:
        connection, desk = self._connection, self._desk
        key_name = connection.principal.name
        try:
            match request:
                case Place(order=order):
                    ack: OrderAck = await desk.place(order)
                    desk.placed(key_name, ack)
                    connection.send(OrderAnswer(id=request.id, op="place", order=ack))
                case Cancel(venue=venue, order_id=order_id):
                    canceled = await desk.cancel(venue, order_id)
                    connection.send(OrderAnswer(id=request.id, op="cancel", cancel=canceled))
                case Amend(amend=change):
                    ack = await desk.amend(change)
                    connection.send(OrderAnswer(id=request.id, op="amend", order=ack))
        except BrokerBridgeError as exc:
            rule = exc.rule if isinstance(exc, OrderRefused) else ""
            connection.send_error(code_of(exc), exc.message, request.id, exc.remedy, rule)
        except Exception as exc:  # our bug: the client still gets an answer to its id
            logger.exception("WebSocket %s %r failed", type(request).__name__.lower(), request.id)
            connection.send_error(
                ErrorCode.INVALID_REQUEST,
                f"the server failed to handle this {type(request).__name__.lower()}: {type(exc).__name__}",
                request.id,
                "this is logged as a server error; check the order's state (GET /api/orders) before "
                "sending it again with the same client_order_id",
            )


def code_of(exc: BrokerBridgeError) -> ErrorCode:
    """The code `/api/orders` answers `exc` with (server/order_routes.py `order_error`)."""
    wire = wire_error_of(exc)
    if wire is not None:
        return ErrorCode(wire.code)
    return ErrorCode.UNAVAILABLE if isinstance(exc, TransportError) else ErrorCode.INVALID_REQUEST
