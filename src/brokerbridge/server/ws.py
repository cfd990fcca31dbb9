"""The `/ws` endpoint: one `ClientConnection` per socket, all sharing the Bridge's upstreams.

Per connection one TaskGroup owns: the receive loop (requests → acks/errors), one pump per
subscription (Bridge events → `event` messages with a per-subscription `seq`), the heartbeat, and
the sender — the only task that writes to the socket, from the connection's `Outbox` (queue policy:
ticker/book conflated, account channels never dropped — a client that cannot keep up with them is
closed with 1008 and a reason; other market data waits, and the Bridge inserts a `gap`).
Every request passes the connection's token bucket first; channels need their scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import cast

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from brokerbridge.bridge import Bridge, topic_of
from brokerbridge.core.errors import (
    BrokerBridgeError,
    ConfigError,
    PermissionDenied,
    RateLimited,
    UnknownSymbol,
)
from brokerbridge.core.events import AnyEvent, BookSnapshot, BookUpdate, Channel, Gap, StreamStatus, Ticker
from brokerbridge.server.auth import Authenticator, Principal, TokenBucket, scope_of
from brokerbridge.server.metrics import ServerMetrics
from brokerbridge.server.outbox import Outbox
from brokerbridge.server.protocol import (
    Ack,
    Auth,
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
POLICY_VIOLATION = 1008


@dataclass(frozen=True)
class WsSettings:
    heartbeat_interval: float = 10.0  # seconds between server heartbeats
    client_queue_size: int = 1000  # outgoing messages per client before conflation / disconnect
    messages_per_second: float = 20.0
    message_burst: int = 40
    max_subscriptions: int = 100
    max_connections_per_key: int = 20
    close_timeout: float = 10.0  # how long a close frame may wait behind a client's unread data


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
        auth: Authenticator,
        principal: Principal,
        registry: ClientRegistry,
    ) -> None:
        self.websocket = websocket
        self._bridge = bridge
        self._metrics = metrics
        self._codec = codec
        self._settings = settings
        self._auth = auth
        self.principal = principal
        self._registry = registry
        self._bucket = TokenBucket(
            settings.messages_per_second, settings.message_burst, bridge.clock.monotonic
        )
        self.outbox = Outbox(settings.client_queue_size)
        self.close_reason: str | None = None
        self._pumps: dict[RequestId, asyncio.Task[None]] = {}
        self._tasks: asyncio.TaskGroup | None = None
        self._sender: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def queue_depth(self) -> int:
        return len(self.outbox)

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
        """Send a close frame now (queued messages are dropped); the receive loop then ends.
        The frame waits behind data already written (at most `close_timeout`)."""
        if self._closed:
            return
        self._closed = True
        self.close_reason = reason
        if self._sender is not None and self._sender is not asyncio.current_task():
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sender
        if self.websocket.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self._settings.close_timeout):
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
            data = await self.outbox.get()
            await self.websocket.send_text(data.decode())

    async def _heartbeat_loop(self) -> None:
        interval = self._settings.heartbeat_interval
        while True:
            await self._bridge.clock.sleep(interval)
            # A heartbeat is conflated like a ticker: a client that does not read gets one, not a pile.
            self._queue_conflated("heartbeat", Heartbeat(ts=self._bridge.clock.time()))

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
                    await self._send_event(sub_id, seq, event)
        except BrokerBridgeError as exc:  # the venue refused the stream for good
            await self._send_error(_code_of(exc), exc.message, sub_id, exc.remedy)
        finally:
            if self._pumps.get(sub_id) is asyncio.current_task():
                del self._pumps[sub_id]

    # -- requests ----------------------------------------------------------------------------
    async def _handle(self, data: str | bytes) -> None:
        if not self._bucket.take():
            self._metrics.ws_messages_in.labels("rate_limited").inc()
            await self._send_error(
                ErrorCode.RATE_LIMITED,
                f"more than {self._settings.messages_per_second:g} messages per second "
                f"(burst {self._settings.message_burst}): this message was not processed",
                request_id_of(data),
                "slow down and send it again",
            )
            return
        try:
            request = self._codec.decode(data)
        except msgspec.ValidationError as exc:
            self._metrics.ws_messages_in.labels("invalid").inc()
            await self._send_error(
                ErrorCode.INVALID_REQUEST,
                f"invalid request: {exc}",
                request_id_of(data),
                "ops: subscribe, unsubscribe, ping, auth (see docs/server.md)",
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
            case Auth():
                self._metrics.ws_messages_in.labels("auth").inc()
                await self._authenticate(request)

    async def _authenticate(self, request: Auth) -> None:
        key = self._auth.lookup(request.key)
        if key is None:
            await self._send_error(
                ErrorCode.NOT_AUTHORIZED,
                "invalid API key",
                request.id,
                "use a key from the server's [server] keys",
            )
            return
        if key.name != self.principal.name:
            if not self._registry.move(self, key.name, self._settings.max_connections_per_key):
                await self._send_error(
                    ErrorCode.RATE_LIMITED,
                    f"key {key.name!r} already has {self._settings.max_connections_per_key} connections",
                    request.id,
                    "close another connection using this key (server.max_connections_per_key)",
                )
                return
        self.principal = self._auth.principal_of(key)
        await self._send(Ack(id=request.id, op="auth"))

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
        if len(self._pumps) >= self._settings.max_subscriptions:
            await self._send_error(
                ErrorCode.INVALID_REQUEST,
                f"at most {self._settings.max_subscriptions} subscriptions per connection",
                sub_id,
                "unsubscribe from another stream first, or open another connection",
            )
            return
        scope = scope_of(request.channel)
        if not self.principal.allows(scope):
            await self._send_error(
                ErrorCode.NOT_AUTHORIZED,
                f"channel {request.channel!r} needs the {scope!r} scope"
                + ("" if self.principal.name else " (no API key presented)"),
                sub_id,
                'present a key with that scope: Authorization: Bearer <key>, ?key=, or {"op": "auth"}',
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
    async def _send_event(self, sub_id: RequestId, seq: int, event: AnyEvent) -> None:
        if self._closed:
            raise _Disconnected
        match event:
            case Ticker():
                self._queue_conflated(sub_id, EventMessage(id=sub_id, seq=seq, event=event))
            case BookSnapshot() | BookUpdate():
                if self.outbox.market_full and isinstance(event, BookUpdate):
                    # Deltas cannot be merged: the newest waiting message becomes the whole book.
                    sub = self._bridge.subscription(
                        event.venue, Channel.BOOK, event.symbol, depth=event.depth
                    )
                    snapshot = self._bridge.connectors[event.venue].book_snapshot(sub)
                    if snapshot is not None:
                        self._queue_conflated(sub_id, EventMessage(id=sub_id, seq=seq, event=snapshot))
                        return
                self._queue_conflated(sub_id, EventMessage(id=sub_id, seq=seq, event=event))
            case StreamStatus() | Gap():
                await self._send(EventMessage(id=sub_id, seq=seq, event=event), key=sub_id)
            case _ if _topic_channel(event).private:
                await self._send(EventMessage(id=sub_id, seq=seq, event=event))
            case _:
                message = EventMessage(id=sub_id, seq=seq, event=event)
                await self.outbox.put_waiting(self._codec.encode(message))
                self._metrics.ws_messages_out.labels("event").inc()

    def _queue_conflated(self, key: RequestId, message: ServerMessage) -> None:
        if self._closed:
            return
        self.outbox.put_conflated(key, self._codec.encode(message))
        self._metrics.ws_messages_out.labels(_type_of(message)).inc()

    async def _send(self, message: ServerMessage, key: RequestId | None = None) -> None:
        """Queue a message that must not be lost; a client too far behind is closed (1008)."""
        if self._closed:
            raise _Disconnected
        if not self.outbox.put_lossless(self._codec.encode(message), key):
            reason = (
                f"client too slow: more than {self.outbox.limit} undelivered messages that cannot be "
                "dropped (executions/orders/balances/acks)"
            )
            logger.warning("closing a WebSocket client (%s): %s", self.principal.name or "anonymous", reason)
            await self.close(reason, POLICY_VIOLATION)
            raise _Disconnected
        self._metrics.ws_messages_out.labels(_type_of(message)).inc()

    async def _send_error(
        self, code: ErrorCode, message: str, request_id: RequestId | None, remedy: str = ""
    ) -> None:
        self._metrics.ws_errors.labels(code.value).inc()
        await self._send(Error(code=code, message=message, id=request_id, remedy=remedy))


class ClientRegistry:
    """The connected clients (so shutdown can tell each of them why it is being closed), counted
    per key for `max_connections_per_key`."""

    def __init__(self) -> None:
        self._clients: set[ClientConnection] = set()
        self._per_key: Counter[str] = Counter()

    def clients(self) -> list[ClientConnection]:
        return list(self._clients)

    def connections_of(self, key_name: str) -> int:
        return self._per_key[key_name]

    def add(self, client: ClientConnection) -> None:
        self._clients.add(client)
        if client.principal.name is not None:
            self._per_key[client.principal.name] += 1

    def move(self, client: ClientConnection, key_name: str, limit: int) -> bool:
        """Count `client` under `key_name` (an `auth` message), unless that key is at `limit`."""
        if self._per_key[key_name] >= limit:
            return False
        self._release(client)
        self._per_key[key_name] += 1
        return True

    def _release(self, client: ClientConnection) -> None:
        name = client.principal.name
        if name is not None:
            self._per_key[name] -= 1
            if self._per_key[name] <= 0:
                del self._per_key[name]

    def discard(self, client: ClientConnection) -> None:
        if client in self._clients:
            self._clients.discard(client)
            self._release(client)

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


def _topic_channel(event: AnyEvent) -> Channel:
    return Channel(topic_of(event).split(":")[1])


def _type_of(message: ServerMessage) -> str:
    return type(message).__struct_config__.tag or "unknown"  # type: ignore[return-value]
