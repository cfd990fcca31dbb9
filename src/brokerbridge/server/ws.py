"""The `/ws` endpoint: one `ClientConnection` per socket, all sharing the Bridge's upstreams.

Per connection one TaskGroup owns: the receive loop (requests → acks/errors), one pump per
subscribed stream (Bridge events → `event` messages; a batch `subscribe` with `symbols` has one pump
per symbol, all numbered by the subscription's one `seq`), the heartbeat, and
the sender — the only task that writes to the socket, from the connection's `Outbox` (queue policy:
ticker/book conflated, account channels never dropped — a client that cannot keep up with them is
closed with 1008 and a reason; other market data waits, and the Bridge inserts a `gap`).
Every request passes the connection's token bucket first; channels need their scope.

Per message per client the path is kept short (issue 8, bench/README.md): an event's JSON is encoded
once for all clients (`Codec.event_body`), counts are plain ints (`ServerMetrics.out`), delivery lag
is sampled. A connection without subscriptions has no sender task while its outbox is empty (one
starts when something is queued): idle clients are the many, and each task costs a kilobyte or two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncGenerator, Hashable
from dataclasses import dataclass, field
from typing import NoReturn, cast

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
from brokerbridge.core.events import (
    AnyEvent,
    BookSnapshot,
    BookUpdate,
    Channel,
    Fill,
    Gap,
    StreamStatus,
    Ticker,
)
from brokerbridge.server.auth import Authenticator, Principal, TokenBucket, scope_of
from brokerbridge.server.metrics import LAG_SAMPLE_EVERY, ServerMetrics
from brokerbridge.server.outbox import Encode, Outbox
from brokerbridge.server.protocol import (
    Ack,
    Auth,
    Codec,
    Error,
    ErrorCode,
    Heartbeat,
    Ping,
    Pong,
    RequestId,
    ServerMessage,
    Subscribe,
    Unsubscribe,
    event_text,
    request_id_of,
)

logger = logging.getLogger(__name__)

DEFAULT_DEPTHS = {"kraken": 10, "primary": 5}
_HEARTBEAT = ("heartbeat",)  # the heartbeat's conflation key (subscriptions use (id, symbol) pairs)
GOING_AWAY = 1001
POLICY_VIOLATION = 1008
FLOOD_FACTOR = 10  # refusals in a row, in bursts, before a flooding client is closed


@dataclass(frozen=True)
class WsSettings:
    heartbeat_interval: float = 10.0  # seconds between server heartbeats
    client_queue_size: int = 1000  # per client: lossless messages before 1008, market before waiting
    conflate_after: int = 64  # waiting market messages per client from which ticker/book are conflated
    messages_per_second: float = 20.0
    message_burst: int = 40
    max_subscriptions: int = 1000  # streams per connection (a batch counts each symbol)
    max_connections_per_key: int = 20
    close_timeout: float = 10.0  # how long a close frame may wait behind a client's unread data
    max_message_bytes: int = 1 << 20  # a larger client frame closes the socket with 1009


class _Disconnected(Exception):
    """The client went away: end the connection's task group."""


@dataclass
class _Subscription:
    """One accepted `subscribe`: a pump per symbol (None: a stream without one), one `seq` for all."""

    batch: bool
    head: str  # the start of its `event` messages (`Codec.event_head`)
    pumps: dict[str | None, asyncio.Task[None]] = field(default_factory=dict)
    seq: int = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


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
        self.outbox = Outbox(settings.client_queue_size, settings.conflate_after)
        self._refused_in_row = 0  # rate-limited messages since the last accepted one
        self._messages_out = metrics.out.messages_out
        self._conflated = metrics.out.conflated
        self.close_reason: str | None = None
        self._subs: dict[RequestId, _Subscription] = {}
        self._tasks: asyncio.TaskGroup | None = None
        self._sender: asyncio.Task[None] | None = None  # None: nothing to send, no subscription
        self._closed = False
        self._close_done = False  # the close frame is written (or could not be)
        self._close_sent: asyncio.Event | None = None  # made when someone waits for it

    @property
    def queue_depth(self) -> int:
        return len(self.outbox)

    async def run(self) -> None:
        """Serve the socket until the client leaves (or `close` is called)."""
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
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
        try:
            if self._sender is not None and self._sender is not asyncio.current_task():
                self._sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._sender
            if self.websocket.application_state is WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self._settings.close_timeout):
                        await self.websocket.close(code=code, reason=reason)
        finally:
            self._close_done = True
            if self._close_sent is not None:
                self._close_sent.set()

    async def _stop(self) -> NoReturn:
        """End the connection's tasks — once the close frame is out: tearing the task group down
        earlier would cancel a close waiting behind a slow client's unread data, and the client
        would see the socket drop without the reason."""
        if not self._close_done:
            if self._close_sent is None:
                self._close_sent = asyncio.Event()
            await self._close_sent.wait()
        raise _Disconnected

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

    def _wake_sender(self) -> None:
        """Something was queued: make sure a sender runs."""
        if self._sender is None and self._tasks is not None and not self._closed:
            with contextlib.suppress(RuntimeError):  # the task group is ending: nobody to send to
                self._sender = self._tasks.create_task(self._send_loop(), name="ws-sender")

    async def _send_loop(self) -> None:
        clock = self._bridge.clock
        lag = self._metrics.ws_delivery_lag
        outbox = self.outbox
        send = self.websocket.send_text
        events = 0
        try:
            while outbox or self._subs:  # idle and drained: end; the next message starts a sender
                data, received = await outbox.get()
                await send(data)
                if received is not None:
                    if events % LAG_SAMPLE_EVERY == 0:
                        lag.observe(max(0.0, clock.monotonic() - received))
                    events += 1
        finally:
            if self._sender is asyncio.current_task():
                self._sender = None

    async def _heartbeat_loop(self) -> None:
        interval = self._settings.heartbeat_interval
        clock = self._bridge.clock
        while True:
            await clock.sleep(interval)
            # A heartbeat is conflated like a ticker: a client that does not read gets one, not a pile.
            beat = _encoded(self._codec.encode(Heartbeat(ts=clock.time())).decode())
            self._queue_conflated(_HEARTBEAT, 0, beat, "heartbeat", None)

    async def _pump(
        self, sub_id: RequestId, sub: _Subscription, request: Subscribe, symbol: str | None, depth: int
    ) -> None:
        clock = self._bridge.clock
        stream = self._source(request, symbol, depth)
        try:
            async with contextlib.aclosing(stream):
                async for event in stream:
                    await self._send_event(sub_id, sub, symbol, event, clock.monotonic())
        except BrokerBridgeError as exc:  # the venue refused the stream for good
            message = exc.message
            if sub.batch and repr(symbol) not in message:
                message = f"{message} (symbol {symbol!r}; the batch's other symbols go on)"
            await self._send_error(_code_of(exc), message, sub_id, exc.remedy)
        except _Disconnected:
            raise
        except Exception as exc:  # our bug: end this stream with a reason, not the whole connection
            logger.exception("WebSocket stream %s of subscription %r failed", symbol, sub_id)
            await self._send_error(
                ErrorCode.INVALID_REQUEST,
                f"the server could not serve {request.channel} {symbol!r}: {exc}",
                sub_id,
                "subscribe differently (this is logged as a server error)",
            )
        finally:
            if sub.pumps.get(symbol) is asyncio.current_task():
                del sub.pumps[symbol]
                if not sub.pumps and self._subs.get(sub_id) is sub:
                    del self._subs[sub_id]

    def _source(self, request: Subscribe, symbol: str | None, depth: int) -> AsyncGenerator[AnyEvent, None]:
        bridge = self._bridge
        if request.channel == STATUS_CHANNEL:
            return cast(AsyncGenerator[AnyEvent, None], bridge.statuses(request.venue))
        if request.channel == ORDERS_CHANNEL:
            return _orders_only(bridge, request.venue)
        return cast(
            AsyncGenerator[AnyEvent, None],
            bridge.subscribe(request.venue, request.channel, symbol, depth=depth, interval=request.interval),
        )

    # -- requests ----------------------------------------------------------------------------
    async def _handle(self, data: str | bytes) -> None:
        if not self._bucket.take():
            self._metrics.ws_messages_in.labels("rate_limited").inc()
            self._refused_in_row += 1
            if self._refused_in_row > FLOOD_FACTOR * self._settings.message_burst:
                # Answering a flood costs us more than it costs the flooder, whatever buffers the
                # kernel gives its socket: past this many refusals in a row the connection goes.
                reason = f"client flooding: {self._refused_in_row} messages in a row over the rate limit"
                who = self.principal.name or "anonymous"
                logger.warning("closing a WebSocket client (%s): %s", who, reason)
                await self.close(reason, POLICY_VIOLATION)
                await self._stop()
            await self._send_error(
                ErrorCode.RATE_LIMITED,
                f"more than {self._settings.messages_per_second:g} messages per second "
                f"(burst {self._settings.message_burst}): this message was not processed",
                request_id_of(data),
                "slow down and send it again",
            )
            return
        self._refused_in_row = 0
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
                sub = self._subs.pop(sub_id, None)
                if sub is None:
                    await self._send_error(
                        ErrorCode.INVALID_REQUEST, f"no subscription with id {sub_id!r}", sub_id
                    )
                    return
                for pump in sub.pumps.values():
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
        if sub_id in self._subs:
            await self._send_error(
                ErrorCode.INVALID_REQUEST,
                f"subscription id {sub_id!r} is in use on this connection",
                sub_id,
                "use a new id, or unsubscribe first",
            )
            return
        symbols = await self._symbols_of(request)
        if symbols is None:
            return
        limit = self._settings.max_subscriptions
        open_streams = sum(len(sub.pumps) for sub in self._subs.values())
        if open_streams + len(symbols) > limit:
            asked = f"; this request asks for {len(symbols)}" if request.symbols is not None else ""
            await self._send_error(
                ErrorCode.INVALID_REQUEST,
                f"at most {limit} subscriptions per connection ({open_streams} open{asked}; "
                "each symbol of a batch counts)",
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
        if request.channel not in CHANNELS:
            await self._send_error(
                ErrorCode.UNKNOWN_CHANNEL,
                f"unknown channel {request.channel!r}",
                sub_id,
                f"channels: {', '.join(CHANNELS)}",
            )
            return
        depth = request.depth if request.depth is not None else DEFAULT_DEPTHS.get(request.venue, 10)
        # What the Bridge refuses before any upstream exists (a bad depth, a symbol where none
        # belongs) is a mistake in the request: a batch is then refused whole.
        streams: list[str] = []
        refused: list[tuple[str | None, BrokerBridgeError]] = []
        for symbol in symbols:
            try:
                if request.channel == STATUS_CHANNEL:
                    if symbol is not None:
                        raise ConfigError(
                            f"the status channel takes no symbol (got {symbol!r})",
                            remedy="it carries the status of every stream of the venue",
                        )
                    streams.append(f"{request.venue}:{STATUS_CHANNEL}")
                    continue
                channel = Channel.EXECUTIONS if request.channel == ORDERS_CHANNEL else request.channel
                sub = bridge.subscription(
                    request.venue, channel, symbol, depth=depth, interval=request.interval
                )
            except BrokerBridgeError as exc:
                refused.append((symbol, exc))
            else:
                name = sub.describe()
                if request.channel == ORDERS_CHANNEL:
                    name = f"{request.venue}:{ORDERS_CHANNEL}"
                streams.append(name)
        if refused:
            _, first = refused[0]
            message = first.message
            if request.symbols is not None:
                named = ", ".join(repr(symbol) for symbol, _ in refused[:5])
                more = f" and {len(refused) - 5} more" if len(refused) > 5 else ""
                message += f" (refused: {named}{more}; nothing was subscribed)"
            await self._send_error(_code_of(first), message, sub_id, first.remedy)
            return
        assert self._tasks is not None
        await self._send(Ack(id=sub_id, op="subscribe", stream=streams[0], streams=tuple(streams)))
        sub_state = _Subscription(batch=request.symbols is not None, head=self._codec.event_head(sub_id))
        self._subs[sub_id] = sub_state
        for symbol, name in zip(symbols, streams, strict=True):
            sub_state.pumps[symbol] = self._tasks.create_task(
                self._pump(sub_id, sub_state, request, symbol, depth), name=f"ws-pump-{name}"
            )

    async def _symbols_of(self, request: Subscribe) -> list[str | None] | None:
        """The symbols a subscribe asks for (None after answering an invalid combination)."""
        if request.symbols is None:
            return [request.symbol]
        problem = None
        if request.symbol is not None:
            problem = "give either symbol or symbols, not both"
        elif not request.symbols:
            problem = "symbols is empty"
        else:
            seen: set[str] = set()
            twice = next((s for s in request.symbols if s in seen or seen.add(s)), None)  # type: ignore[func-returns-value]
            if twice is not None:
                problem = f"symbol {twice!r} appears more than once in symbols"
        if problem is None:
            return list(request.symbols)
        await self._send_error(
            ErrorCode.INVALID_REQUEST,
            problem,
            request.id,
            'one stream: "symbol": "BTC/USD"; several under one id: "symbols": ["BTC/USD", "ETH/USD"]',
        )
        return None

    # -- output ------------------------------------------------------------------------------
    async def _send_event(
        self, sub_id: RequestId, sub: _Subscription, symbol: str | None, event: AnyEvent, received: float
    ) -> None:
        if self._closed:
            await self._stop()
        key = (sub_id, symbol)  # conflation and ordering are per subscription and symbol
        match event:
            case Ticker():
                self._queue_event(key, sub, event, "ticker", received)
            case BookSnapshot() | BookUpdate():
                if self.outbox.conflating and isinstance(event, BookUpdate):
                    # Deltas cannot be merged: the newest waiting message becomes the whole book.
                    snapshot = self._current_book(event)
                    if snapshot is not None:
                        event = snapshot
                self._queue_event(key, sub, event, "book", received)
            case StreamStatus() | Gap():
                await self._send_text(self._event_text(sub, event), "event", key, received)
            case _ if _topic_channel(event).private:
                await self._send_text(self._event_text(sub, event), "event", None, received)
            case _:
                await self.outbox.wait_for_room()
                if self._closed:
                    await self._stop()
                # `seq` is taken only now that the message is queued, so it grows in queue order.
                self.outbox.put_market(self._event_text(sub, event), received)
                self._messages_out["event"] += 1
                self._wake_sender()

    def _event_text(self, sub: _Subscription, event: AnyEvent) -> str:
        return event_text(sub.head, sub.next_seq(), self._codec.event_body(event))

    def _current_book(self, update: BookUpdate) -> BookSnapshot | None:
        sub = self._bridge.subscription(update.venue, Channel.BOOK, update.symbol, depth=update.depth)
        return self._bridge.connectors[update.venue].book_snapshot(sub)

    def _queue_event(
        self, key: Hashable, sub: _Subscription, event: AnyEvent, kind: str, received: float
    ) -> None:
        head, body = sub.head, self._codec.event_body(event)
        self._queue_conflated(key, sub.next_seq(), lambda seq: event_text(head, seq, body), kind, received)

    def _queue_conflated(
        self, key: Hashable, seq: int, encode: Encode, kind: str, received: float | None
    ) -> None:
        if self._closed:
            return
        if self.outbox.put_conflated(key, seq, encode, received):
            self._conflated[kind] += 1
        else:
            self._messages_out["heartbeat" if kind == "heartbeat" else "event"] += 1
            self._wake_sender()

    async def _send(self, message: ServerMessage) -> None:
        """Queue a message that must not be lost; a client too far behind is closed (1008)."""
        await self._send_text(self._codec.encode(message).decode(), _type_of(message))

    async def _send_text(
        self, text: str, kind: str, key: Hashable | None = None, received: float | None = None
    ) -> None:
        if self._closed:
            await self._stop()
        if not self.outbox.put_lossless(text, key, received):
            reason = (
                f"client too slow: more than {self.outbox.limit} undelivered messages that cannot be "
                "dropped (executions/orders/balances/acks)"
            )
            logger.warning("closing a WebSocket client (%s): %s", self.principal.name or "anonymous", reason)
            self._metrics.ws_slow_disconnects.inc()
            await self.close(reason, POLICY_VIOLATION)
            await self._stop()
        self._messages_out[kind] += 1
        self._wake_sender()

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


def _encoded(data: str) -> Encode:
    """A message without a `seq` (a heartbeat), already encoded."""
    return lambda _seq: data


def _topic_channel(event: AnyEvent) -> Channel:
    return Channel(topic_of(event).split(":")[1])


def _type_of(message: ServerMessage) -> str:
    return type(message).__struct_config__.tag or "unknown"  # type: ignore[return-value]


# Channels the server adds to the Bridge's: a venue's status feed, and executions without the fills.
STATUS_CHANNEL = "status"
ORDERS_CHANNEL = "orders"
CHANNELS = (*(c.value for c in Channel), ORDERS_CHANNEL, STATUS_CHANNEL)


async def _orders_only(bridge: Bridge, venue: str) -> AsyncGenerator[AnyEvent, None]:
    """The `orders` channel: the orders believed open now, then the executions stream's order
    updates, status and gaps (fills are on `executions`)."""
    stream = cast(AsyncGenerator[AnyEvent, None], bridge.subscribe(venue, Channel.EXECUTIONS))
    async with contextlib.aclosing(stream):
        for order in bridge.open_orders(venue):
            yield order
        async for event in stream:
            if not isinstance(event, Fill):
                yield event
