"""The `/ws` endpoint: one `ClientConnection` per socket, all sharing the Bridge's upstreams.

Per connection one TaskGroup owns: the receive loop (requests → acks/errors), one pump per
subscription (Bridge events → `event` messages with a per-subscription `seq`), the heartbeat, and
the sender — the only task that writes to the socket, from a bounded outgoing queue. A full queue
makes pumps wait; the Bridge then drops the oldest market data for that consumer and says so with
a `gap` (executions and balances are never dropped there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import cast

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from brokerbridge.bridge import Bridge
from brokerbridge.core.errors import (
    BrokerBridgeError,
    ConfigError,
    PermissionDenied,
    RateLimited,
    UnknownSymbol,
)
from brokerbridge.core.events import AnyEvent, Channel
from brokerbridge.server.metrics import ServerMetrics
from brokerbridge.server.protocol import (
    Ack,
    Codec,
    Error,
    ErrorCode,
    EventMessage,
    Heartbeat,
    Ping,
    Pong,
    RequestId,
    ServerMessage,
    Subscribe,
    Unsubscribe,
    request_id_of,
)

logger = logging.getLogger(__name__)

DEFAULT_DEPTHS = {"kraken": 10, "primary": 5}
GOING_AWAY = 1001


@dataclass(frozen=True)
class WsSettings:
    heartbeat_interval: float = 10.0  # seconds between server heartbeats
    client_queue_size: int = 1000  # outgoing messages buffered per client


class _Disconnected(Exception):
    """The client went away: end the connection's task group."""


class ClientConnection:
    def __init__(
        self,
        websocket: WebSocket,
        bridge: Bridge,
        metrics: ServerMetrics,
        codec: Codec,
        settings: WsSettings,
    ) -> None:
        self.websocket = websocket
        self._bridge = bridge
        self._metrics = metrics
        self._codec = codec
        self._settings = settings
        self._outgoing: asyncio.Queue[bytes] = asyncio.Queue(settings.client_queue_size)
        self._pumps: dict[RequestId, asyncio.Task[None]] = {}
        self._tasks: asyncio.TaskGroup | None = None
        self._sender: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def queue_depth(self) -> int:
        return self._outgoing.qsize()

    async def run(self) -> None:
        """Serve the socket until the client leaves (or `close` is called)."""
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                self._sender = tasks.create_task(self._send_loop(), name="ws-sender")
                tasks.create_task(self._heartbeat_loop(), name="ws-heartbeat")
                await self._receive_loop()
                raise _Disconnected
        except* _Disconnected:
            pass
        except* (WebSocketDisconnect, OSError):
            pass  # the peer vanished mid-send: nothing to tell it
        finally:
            self._tasks = None

    async def close(self, reason: str, code: int = GOING_AWAY) -> None:
        """Send a close frame now (queued messages are dropped); the receive loop then ends."""
        if self._closed:
            return
        self._closed = True
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sender
        if self.websocket.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await self.websocket.close(code=code, reason=reason)

    # -- tasks -------------------------------------------------------------------------------
    async def _receive_loop(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            await self._handle(data)

    async def _send_loop(self) -> None:
        while True:
            data = await self._outgoing.get()
            await self.websocket.send_text(data.decode())

    async def _heartbeat_loop(self) -> None:
        interval = self._settings.heartbeat_interval
        while True:
            await self._bridge.clock.sleep(interval)
            await self._send(Heartbeat(ts=self._bridge.clock.time()))

    async def _pump(self, sub_id: RequestId, request: Subscribe, depth: int) -> None:
        seq = 0
        stream = cast(
            AsyncGenerator[AnyEvent, None],
            self._bridge.subscribe(
                request.venue, request.channel, request.symbol, depth=depth, interval=request.interval
            ),
        )
        try:
            async with contextlib.aclosing(stream):
                async for event in stream:
                    seq += 1
                    await self._send(EventMessage(id=sub_id, seq=seq, event=event))
        except BrokerBridgeError as exc:  # the venue refused the stream for good
            await self._send_error(_code_of(exc), exc.message, sub_id, exc.remedy)
        finally:
            if self._pumps.get(sub_id) is asyncio.current_task():
                del self._pumps[sub_id]

    # -- requests ----------------------------------------------------------------------------
    async def _handle(self, data: str | bytes) -> None:
        try:
            request = self._codec.decode(data)
        except msgspec.ValidationError as exc:
            self._metrics.ws_messages_in.labels("invalid").inc()
            await self._send_error(
                ErrorCode.INVALID_REQUEST,
                f"invalid request: {exc}",
                request_id_of(data),
                "ops: subscribe, unsubscribe, ping (see docs/server.md)",
            )
            return
        except msgspec.DecodeError as exc:
            self._metrics.ws_messages_in.labels("invalid").inc()
            await self._send_error(ErrorCode.MALFORMED, f"not a JSON message: {exc}", None, "send JSON text")
            return
        match request:
            case Subscribe():
                self._metrics.ws_messages_in.labels("subscribe").inc()
                await self._subscribe(request)
            case Unsubscribe(id=sub_id):
                self._metrics.ws_messages_in.labels("unsubscribe").inc()
                pump = self._pumps.pop(sub_id, None)
                if pump is None:
                    await self._send_error(
                        ErrorCode.INVALID_REQUEST, f"no subscription with id {sub_id!r}", sub_id
                    )
                    return
                pump.cancel()
                await self._send(Ack(id=sub_id, op="unsubscribe"))
            case Ping(id=ping_id):
                self._metrics.ws_messages_in.labels("ping").inc()
                await self._send(Pong(id=ping_id, ts=self._bridge.clock.time()))

    async def _subscribe(self, request: Subscribe) -> None:
        sub_id = request.id
        if sub_id in self._pumps:
            await self._send_error(
                ErrorCode.INVALID_REQUEST,
                f"subscription id {sub_id!r} is in use on this connection",
                sub_id,
                "use a new id, or unsubscribe first",
            )
            return
        bridge = self._bridge
        if request.venue not in bridge.connectors:
            await self._send_error(
                ErrorCode.UNKNOWN_VENUE,
                f"unknown venue {request.venue!r}",
                sub_id,
                f"venues: {', '.join(sorted(bridge.connectors))}",
            )
            return
        if request.channel not in {c.value for c in Channel}:
            await self._send_error(
                ErrorCode.UNKNOWN_CHANNEL,
                f"unknown channel {request.channel!r}",
                sub_id,
                f"channels: {', '.join(c.value for c in Channel)}",
            )
            return
        depth = request.depth if request.depth is not None else DEFAULT_DEPTHS.get(request.venue, 10)
        try:
            sub = bridge.subscription(
                request.venue, request.channel, request.symbol, depth=depth, interval=request.interval
            )
        except BrokerBridgeError as exc:
            await self._send_error(_code_of(exc), exc.message, sub_id, exc.remedy)
            return
        assert self._tasks is not None
        await self._send(Ack(id=sub_id, op="subscribe", stream=sub.describe()))
        self._pumps[sub_id] = self._tasks.create_task(
            self._pump(sub_id, request, depth), name=f"ws-pump-{sub.describe()}"
        )

    # -- output ------------------------------------------------------------------------------
    async def _send(self, message: ServerMessage) -> None:
        if self._closed:
            return
        await self._outgoing.put(self._codec.encode(message))
        self._metrics.ws_messages_out.labels(_type_of(message)).inc()

    async def _send_error(
        self, code: ErrorCode, message: str, request_id: RequestId | None, remedy: str = ""
    ) -> None:
        self._metrics.ws_errors.labels(code.value).inc()
        await self._send(Error(code=code, message=message, id=request_id, remedy=remedy))


class ClientRegistry:
    """The connected clients, so shutdown can tell each of them why it is being closed."""

    def __init__(self) -> None:
        self._clients: set[ClientConnection] = set()

    def add(self, client: ClientConnection) -> None:
        self._clients.add(client)

    def discard(self, client: ClientConnection) -> None:
        self._clients.discard(client)

    def stats(self) -> tuple[int, list[int]]:
        return len(self._clients), [c.queue_depth for c in self._clients]

    async def close_all(self, reason: str) -> None:
        clients = list(self._clients)
        if clients:
            logger.info("closing %d client connection(s): %s", len(clients), reason)
        await asyncio.gather(*(c.close(reason) for c in clients))


def _code_of(exc: BrokerBridgeError) -> ErrorCode:
    match exc:
        case UnknownSymbol():
            return ErrorCode.UNKNOWN_SYMBOL
        case PermissionDenied():
            return ErrorCode.NOT_AUTHORIZED
        case RateLimited():
            return ErrorCode.RATE_LIMITED
        case ConfigError() if "unknown venue" in exc.message:
            return ErrorCode.UNKNOWN_VENUE
        case ConfigError() if "unknown channel" in exc.message:
            return ErrorCode.UNKNOWN_CHANNEL
    return ErrorCode.INVALID_REQUEST


def _type_of(message: ServerMessage) -> str:
    return type(message).__struct_config__.tag or "unknown"  # type: ignore[return-value]
