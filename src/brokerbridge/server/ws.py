"""The `/ws` endpoint's clients: one `ClientConnection` per socket, all sharing the Bridge's upstreams.

Nothing here runs in a task of its own: a client's requests are handled as its frames arrive
(server/wire.py). Each market stream it subscribes to is a `Member` of that stream's hub
(server/hub.py: the event is logged once, the client reads it when it is written — conflated or
replaced by a `gap` when it reads far behind); account channels and the `status`/`orders` channels
are `Bridge.listen`ers that queue into the connection's own `ClientQueue` (server/client_queue.py),
never dropped — a client that cannot keep up with them is closed with 1008 and a reason. The
server's `Coalescer` then writes each connection's queue and unread stream events in one go, and one
heartbeat loop serves every client (`ClientRegistry.run_heartbeats`, server/clients.py). Every
request passes the connection's token bucket first; channels need their scope.

Per message per client the path is kept short (issue 8, bench/README.md): an event's JSON is encoded
once for all clients, each client's copy is that text behind its subscription's head and `seq`,
counts are plain ints (`ServerMetrics.out`), delivery lag is sampled. An idle client is a few
objects and no task: idle clients are the many.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from math import ceil
from typing import cast

import msgspec

from brokerbridge.bridge import Bridge, Listening
from brokerbridge.core.errors import (
    BrokerBridgeError,
    ConfigError,
    UnknownSymbol,
    wire_error_of,
)
from brokerbridge.core.events import (
    AnyEvent,
    Channel,
    Fill,
    Subscription,
)
from brokerbridge.server.auth import Authenticator, Principal, TokenBucket, scope_of
from brokerbridge.server.client_queue import ClientQueue
from brokerbridge.server.clients import ClientRegistry
from brokerbridge.server.coalesce import Coalescer
from brokerbridge.server.hub import Hubs, Member
from brokerbridge.server.metrics import LAG_SAMPLE_EVERY, ServerMetrics
from brokerbridge.server.order_desk import OrderDesk
from brokerbridge.server.order_ops import OrderOps
from brokerbridge.server.protocol import (
    Ack,
    Amend,
    Auth,
    Cancel,
    Codec,
    Error,
    ErrorCode,
    Outgoing,
    Ping,
    Place,
    Pong,
    RequestId,
    Subscribe,
    Unsubscribe,
    event_text,
    invalid_text,
    remedy_for,
    request_id_of,
)
from brokerbridge.server.wire import WsWire
from brokerbridge.venues.defaults import book_depth

logger = logging.getLogger(__name__)

GOING_AWAY = 1001
KEEPALIVE_TIMEOUT = 1011  # what websockets closes with when pings go unanswered
POLICY_VIOLATION = 1008
UNLISTED_NAMED = 50  # unlisted symbols of a batch named in its error (the rest are counted)
FLOOD_FACTOR = 10  # refusals in a row, in bursts, before a flooding client is closed


@dataclass(frozen=True)
class WsSettings:
    heartbeat_interval: float = 10.0  # seconds between server heartbeats (and WebSocket pings)
    client_timeout: float = 30.0  # a client heard nothing from (pongs included) this long is closed
    client_queue_size: int = 1000  # per client: lossless messages before 1008, market before dropping
    conflate_after: int = 64  # waiting market messages per client from which ticker/book are conflated
    messages_per_second: float = 20.0
    message_burst: int = 40
    max_subscriptions: int = 1000  # streams per connection (a batch counts each symbol)
    max_connections_per_key: int = 20
    close_timeout: float = 10.0  # how long a close frame may wait behind a client's unread data
    max_message_bytes: int = 1 << 20  # a larger client frame closes the socket with 1009
    write_window: float = 0.005  # the longest a message waits to be written with others (Coalescer)


@dataclass
class _Subscription:
    """One accepted `subscribe`: per symbol (None: a stream without one) a hub member (market data)
    or a Bridge listener (account data, the virtual channels); one `seq` for all."""

    batch: bool
    head: bytes  # the start of its `event` messages (`Codec.event_head`)
    streams: dict[str | None, Listening | Member] = field(default_factory=dict)
    seqs: list[int] = field(default_factory=lambda: [0])  # [the last seq], shared with hub members

    def next_seq(self) -> int:
        self.seqs[0] += 1
        return self.seqs[0]


class ClientConnection:
    def __init__(
        self,
        wire: WsWire,
        bridge: Bridge,
        metrics: ServerMetrics,
        codec: Codec,
        settings: WsSettings,
        auth: Authenticator,
        principal: Principal,
        registry: ClientRegistry,
        coalescer: Coalescer,
        hubs: Hubs,
        orders: OrderDesk,
    ) -> None:
        self.wire = wire
        self._bridge = bridge
        self._metrics = metrics
        self._codec = codec
        self._settings = settings
        self._auth = auth
        self.principal = principal
        self._registry = registry
        self._coalescer = coalescer
        self._hubs = hubs
        self._members: dict[Member, None] = {}  # this client's readers of market streams
        self._bucket = TokenBucket(
            settings.messages_per_second, settings.message_burst, bridge.clock.monotonic
        )
        self.queue = ClientQueue(settings.client_queue_size)
        self._refused_in_row = 0  # rate-limited messages since the last accepted one
        self._messages_out = metrics.out.messages_out
        self._conflated = metrics.out.conflated
        self.close_reason: str | None = None
        self._subs: dict[RequestId, _Subscription] = {}
        self._events = 0  # account events queued: every LAG_SAMPLE_EVERY-th is timed
        self._writes = 0  # writes with stream events: every LAG_SAMPLE_EVERY-th observes the lag
        self._marked = False  # the Coalescer will flush this connection
        self._closed = False
        self._heard_at = bridge.clock.monotonic()  # as the heartbeat loop last saw it
        self._orders = OrderOps(self, orders)

    @property
    def queue_depth(self) -> int:
        """Messages waiting for this client: its queue, and its market streams' unread events."""
        return len(self.queue) + sum(member.pending for member in self._members)

    # -- the wire's calls ---------------------------------------------------------------------
    def received(self, data: str | bytes) -> None:
        if not self._closed:
            self._handle(data)

    def writable_again(self) -> None:
        if not self._closed:
            self._mark()

    def lost(self) -> None:
        """The socket is gone (closed by either side, or dropped)."""
        if not self._closed:
            self._orders.closed()
        self._closed = True
        self._end_streams()
        self.queue.clear()
        self._coalescer.discard(self)
        self._registry.discard(self)

    def flush(self) -> None:
        """Write everything waiting — the queue, then what the client's market streams logged
        since it was last written — in one write (the Coalescer calls this)."""
        self._marked = False
        wire = self.wire
        if self._closed or not wire.writable:
            return  # not writable: `writable_again` asks for another flush
        texts, received = self.queue.drain()  # account events come sampled already
        events = 0
        firsts: list[float] = []
        for member in self._members:
            if member.behind:
                count, first = member.read(texts)
                events += count
                if first is not None:
                    firsts.append(first)
        if not texts:
            return
        if firsts:  # the 1st, 17th, … write with stream events times the first event of each stream
            if self._writes % LAG_SAMPLE_EVERY == 0:
                received += firsts
            self._writes += 1
        if events:
            self._messages_out["event"] += events
        wire.write_texts(texts)
        if received:
            now = self._bridge.clock.monotonic()
            for when in received:
                self._metrics.ws_delivery_lag.observe(max(0.0, now - when))

    # -- closing ------------------------------------------------------------------------------
    def close(self, reason: str, code: int = GOING_AWAY) -> None:
        """Send a close frame now (queued messages are dropped); the socket closes when the client
        answers. The frame waits behind data already written (at most `close_timeout`)."""
        if self._closed:
            return
        self._closed = True
        self._orders.closed()
        self.close_reason = reason
        self._end_streams()
        self.queue.clear()
        self._coalescer.discard(self)
        self.wire.close(code, reason)

    async def aclose(self, reason: str, code: int = GOING_AWAY) -> None:
        """`close`, then wait until the socket is closed."""
        self.close(reason, code)
        await self.wire.wait_closed()

    def _end_streams(self) -> None:
        subs, self._subs = self._subs, {}
        for sub in subs.values():
            for stream in sub.streams.values():
                self._close_stream(stream)
            sub.streams.clear()

    def _close_stream(self, stream: Listening | Member) -> None:
        if isinstance(stream, Member):
            self._members.pop(stream, None)
            stream.hub.leave(stream)
        else:
            stream.close()

    # -- requests ----------------------------------------------------------------------------
    def _handle(self, data: str | bytes) -> None:
        if not self._bucket.take():
            self._metrics.ws_messages_in.labels("rate_limited").inc()
            self._refused_in_row += 1
            if self._refused_in_row > FLOOD_FACTOR * self._settings.message_burst:
                # Answering a flood costs us more than it costs the flooder, whatever buffers the
                # kernel gives its socket: past this many refusals in a row the connection goes.
                reason = f"client flooding: {self._refused_in_row} messages in a row over the rate limit"
                who = self.principal.name or "anonymous"
                self._registry.closings.log(
                    logging.WARNING, "flooding", "closing a WebSocket client (%s): %s", who, reason
                )
                self.close(reason, POLICY_VIOLATION)
                return
            self._send_error(
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
            self._send_error(
                ErrorCode.INVALID_REQUEST,
                f"invalid request: {invalid_text(exc)}",
                request_id_of(data),
                remedy_for(exc),
            )
            return
        except msgspec.DecodeError as exc:
            self._metrics.ws_messages_in.labels("invalid").inc()
            self._send_error(
                ErrorCode.MALFORMED, f"not a JSON message: {invalid_text(exc)}", None, "send JSON text"
            )
            return
        match request:
            case Subscribe():
                self._metrics.ws_messages_in.labels("subscribe").inc()
                self._subscribe(request)
            case Unsubscribe(id=sub_id):
                self._metrics.ws_messages_in.labels("unsubscribe").inc()
                sub = self._subs.pop(sub_id, None)
                if sub is None:
                    self._send_error(ErrorCode.INVALID_REQUEST, f"no subscription with id {sub_id!r}", sub_id)
                    return
                for stream in sub.streams.values():
                    self._close_stream(stream)
                self._send(Ack(id=sub_id, op="unsubscribe"))
            case Ping(id=ping_id):
                self._metrics.ws_messages_in.labels("ping").inc()
                self._send(Pong(id=ping_id, ts=self._bridge.clock.time()))
            case Auth():
                self._metrics.ws_messages_in.labels("auth").inc()
                self._authenticate(request)
            case Place() | Cancel() | Amend():
                self._metrics.ws_messages_in.labels(_op_of(request)).inc()
                self._orders.handle(request)

    def _authenticate(self, request: Auth) -> None:
        throttle, address = self._auth.throttle, self.wire.address
        wait = throttle.retry_after(address, "ws")
        if wait is not None:
            self._send_error(
                ErrorCode.RATE_LIMITED,
                f"too many failed authentications from this address: keys are refused for {ceil(wait)} s",
                request.id,
                "check the key (the server's [server] keys) and send it again after that",
            )
            return
        key = self._auth.lookup(request.key)
        if key is None:
            throttle.failed(address, "ws", '{"op": "auth"}', "invalid API key")
            self._send_error(
                ErrorCode.NOT_AUTHORIZED,
                "invalid API key",
                request.id,
                "use a key from the server's [server] keys",
            )
            return
        if key.name != self.principal.name:
            if not self._registry.move(self, key.name, self._settings.max_connections_per_key):
                self._send_error(
                    ErrorCode.RATE_LIMITED,
                    f"key {key.name!r} already has {self._settings.max_connections_per_key} connections",
                    request.id,
                    "close another connection using this key (server.max_connections_per_key)",
                )
                return
        self._orders.closed()
        self.principal = self._auth.principal_of(key)
        self._orders.opened()
        self._send(Ack(id=request.id, op="auth"))

    def _subscribe(self, request: Subscribe) -> None:
        sub_id = request.id
        if sub_id in self._subs:
            self._send_error(
                ErrorCode.INVALID_REQUEST,
                f"subscription id {sub_id!r} is in use on this connection",
                sub_id,
                "use a new id, or unsubscribe first",
            )
            return
        symbols = self._symbols_of(request)
        if symbols is None:
            return
        limit = self._settings.max_subscriptions
        open_streams = sum(len(sub.streams) for sub in self._subs.values())
        if open_streams + len(symbols) > limit:
            asked = f"; this request asks for {len(symbols)}" if request.symbols is not None else ""
            self._send_error(
                ErrorCode.INVALID_REQUEST,
                f"at most {limit} subscriptions per connection ({open_streams} open{asked}; "
                "each symbol of a batch counts)",
                sub_id,
                "unsubscribe from another stream first, or open another connection",
            )
            return
        scope = scope_of(request.channel)
        if not self.principal.allows(scope):
            self._send_error(
                ErrorCode.NOT_AUTHORIZED,
                f"channel {request.channel!r} needs the {scope!r} scope"
                + ("" if self.principal.name else " (no API key presented)"),
                sub_id,
                'present a key with that scope: Authorization: Bearer <key>, ?key=, or {"op": "auth"}',
            )
            return
        bridge = self._bridge
        if request.venue not in bridge.connectors:
            self._send_error(
                ErrorCode.UNKNOWN_VENUE,
                f"unknown venue {request.venue!r}",
                sub_id,
                f"venues: {', '.join(sorted(bridge.connectors))}",
            )
            return
        if request.channel not in CHANNELS:
            self._send_error(
                ErrorCode.UNKNOWN_CHANNEL,
                f"unknown channel {request.channel!r}",
                sub_id,
                f"channels: {', '.join(CHANNELS)}",
            )
            return
        misplaced = [name for name in ("expiry", "model") if getattr(request, name) is not None]
        if misplaced and request.channel != Channel.GREEKS:
            self._send_error(
                ErrorCode.INVALID_REQUEST,
                f"{' and '.join(misplaced)} belong to the greeks channel only "
                f"(this subscribe is for {request.channel!r})",
                sub_id,
                'leave them out, or subscribe to "channel": "greeks" with "symbol": the underlying (GGAL)',
            )
            return
        depth = book_depth(request.venue, request.depth)
        # What the Bridge refuses before any upstream exists (a bad depth, a symbol where none
        # belongs) is a mistake in the request: a batch is then refused whole. A symbol the venue's
        # catalogue does not list is refused too, before anything goes upstream — but in a batch
        # only that symbol (a catalogue may change between a client's look at it and its request).
        streams: list[str] = []
        subscriptions: list[Subscription | None] = []  # None: the status feed
        refused: list[tuple[str | None, BrokerBridgeError]] = []
        unlisted: dict[str, UnknownSymbol] = {}
        for symbol in symbols:
            try:
                if request.channel == STATUS_CHANNEL:
                    if symbol is not None:
                        raise ConfigError(
                            f"the status channel takes no symbol (got {symbol!r})",
                            remedy="it carries the status of every stream of the venue",
                        )
                    streams.append(f"{request.venue}:{STATUS_CHANNEL}")
                    subscriptions.append(None)
                    continue
                channel = Channel.EXECUTIONS if request.channel == ORDERS_CHANNEL else request.channel
                sub = bridge.subscription(
                    request.venue,
                    channel,
                    symbol,
                    depth=depth,
                    interval=request.interval,
                    expiry=request.expiry,
                    model=request.model,
                )
            except UnknownSymbol as exc:
                if request.symbols is None or symbol is None:
                    refused.append((symbol, exc))
                    continue
                unlisted[symbol] = exc
                unserved = Subscription(
                    venue=request.venue,
                    channel=Channel(channel),
                    symbol=symbol,
                    depth=depth,
                    interval=request.interval,
                    expiry=request.expiry,
                    model=request.model,
                )
                streams.append(unserved.describe())
                subscriptions.append(unserved)
            except BrokerBridgeError as exc:
                refused.append((symbol, exc))
            else:
                name = sub.describe()
                if request.channel == ORDERS_CHANNEL:
                    name = f"{request.venue}:{ORDERS_CHANNEL}"
                streams.append(name)
                subscriptions.append(sub)
        if not refused and len(unlisted) == len(symbols):
            refused = list(unlisted.items())  # nothing left to subscribe: one error, no ack
        if refused:
            _, first = refused[0]
            message = first.message
            if request.symbols is not None:
                named = ", ".join(repr(symbol) for symbol, _ in refused[:5])
                more = f" and {len(refused) - 5} more" if len(refused) > 5 else ""
                message += f" (refused: {named}{more}; nothing was subscribed)"
            self._send_error(_code_of(first), message, sub_id, first.remedy)
            return
        self._send(Ack(id=sub_id, op="subscribe", stream=streams[0], streams=tuple(streams)))
        if unlisted:
            self._send_unlisted(sub_id, request.venue, unlisted)
        state = _Subscription(batch=request.symbols is not None, head=self._codec.event_head(sub_id))
        self._subs[sub_id] = state
        for symbol, wanted in zip(symbols, subscriptions, strict=True):
            if symbol in unlisted:
                continue
            if wanted is not None and request.channel != ORDERS_CHANNEL and not wanted.channel.private:
                member = self._hubs.join(self, wanted, state.head, state.seqs, (sub_id, symbol))
                self._members[member] = None
                state.streams.setdefault(symbol, member)
                if member.hub.refused is not None:  # refused for good, still in its grace period
                    self.stream_refused(member, member.hub.refused)
                continue
            deliver = partial(self._deliver, sub_id, state)
            if wanted is None:  # the venue's status feed
                state.streams[symbol] = bridge.watch_statuses(request.venue, deliver)
                continue
            if request.channel == ORDERS_CHANNEL:
                for order in bridge.open_orders(request.venue):
                    deliver(order)
                deliver = partial(_unless_fill, deliver)
            refused_for_good = partial(self._refused, sub_id, state, symbol)
            state.streams[symbol] = bridge.listen(wanted, deliver, refused_for_good)

    def _send_unlisted(self, sub_id: RequestId, venue: str, unlisted: dict[str, UnknownSymbol]) -> None:
        """One error naming the symbols of a batch the venue does not list (each in quotes, as a
        venue's later refusal names its symbol); the batch's other symbols go on."""
        names = list(unlisted)
        named = ", ".join(repr(symbol) for symbol in names[:UNLISTED_NAMED])
        more = f" and {len(names) - UNLISTED_NAMED} more" if len(names) > UNLISTED_NAMED else ""
        self._send_error(
            ErrorCode.UNKNOWN_SYMBOL,
            f"{venue} does not list {named}{more}: not subscribed (the batch's other symbols go on)",
            sub_id,
            next(iter(unlisted.values())).remedy,
        )

    def stream_refused(self, member: Member, error: BrokerBridgeError) -> None:
        """A hub's venue refused its stream for good (called by the hub)."""
        sub_id, symbol = cast(tuple[RequestId, str | None], member.tag)
        sub = self._subs.get(sub_id)
        if sub is not None and sub.streams.get(symbol) is member:
            self._refused(sub_id, sub, symbol, error)

    def _refused(
        self, sub_id: RequestId, sub: _Subscription, symbol: str | None, error: BrokerBridgeError
    ) -> None:
        """The venue will never serve this stream: tell the client, and let go of it (after the
        Bridge's own delivery round — this is called from inside it)."""
        message = error.message
        if sub.batch and repr(symbol) not in message:
            message = f"{message} (symbol {symbol!r}; the batch's other symbols go on)"
        self._send_error(_code_of(error), message, sub_id, error.remedy)
        asyncio.get_running_loop().call_soon(self._end_stream, sub_id, sub, symbol)

    def _end_stream(self, sub_id: RequestId, sub: _Subscription, symbol: str | None) -> None:
        stream = sub.streams.pop(symbol, None)
        if stream is not None:
            self._close_stream(stream)
        if not sub.streams and self._subs.get(sub_id) is sub:
            del self._subs[sub_id]

    def _symbols_of(self, request: Subscribe) -> list[str | None] | None:
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
        self._send_error(
            ErrorCode.INVALID_REQUEST,
            problem,
            request.id,
            'one stream: "symbol": "BTC/USD"; several under one id: "symbols": ["BTC/USD", "ETH/USD"]',
        )
        return None

    # -- output ------------------------------------------------------------------------------
    def _deliver(self, sub_id: RequestId, sub: _Subscription, event: AnyEvent) -> None:
        """An event of an account stream or a virtual channel (called by the Bridge, inside its
        event path): never dropped."""
        if self._closed:
            return
        try:
            self._put_lossless(self._event_text(sub, event), "event")
        except Exception as exc:  # our bug: tell the client, keep the connection
            logger.exception("WebSocket subscription %r failed", sub_id)
            self._send_error(
                ErrorCode.INVALID_REQUEST,
                f"the server could not serve this stream: {exc}",
                sub_id,
                "subscribe differently (this is logged as a server error)",
            )

    def _received(self) -> float | None:
        """When this event reached the connection, for one event in LAG_SAMPLE_EVERY."""
        self._events += 1
        if self._events % LAG_SAMPLE_EVERY == 1:
            return self._bridge.clock.monotonic()
        return None

    def _event_text(self, sub: _Subscription, event: AnyEvent) -> bytes:
        return event_text(sub.head, sub.next_seq(), self._codec.event_body(event))

    def queue_heartbeat(self, data: bytes) -> None:
        # A heartbeat is conflated like a ticker: a client that does not read gets one, not a pile.
        if self._closed:
            return
        if self.queue.put_heartbeat(data):
            self._conflated["heartbeat"] += 1
            return
        self._messages_out["heartbeat"] += 1
        self._mark()

    def check_alive(self, now: float, timeout: float) -> None:
        """The heartbeat loop's look at the client: a client heard from since the last look gets
        another ping; one silent for `timeout` — pongs included, so not even its WebSocket stack is
        there: a half-open connection, a frozen process — is closed, and so are its streams."""
        if self._closed:
            return
        wire = self.wire
        if wire.heard:
            wire.heard = False
            self._heard_at = now
        elif now - self._heard_at >= timeout:
            reason = f"keepalive ping timeout: nothing received from the client for {timeout:g} s"
            logger.info("closing a WebSocket client (%s): %s", self.principal.name or "anonymous", reason)
            self._metrics.ws_silent_disconnects.inc()
            self.close(reason, KEEPALIVE_TIMEOUT)
            return
        wire.ping()

    def _mark(self) -> None:
        """Ask the Coalescer for a flush (once until it comes)."""
        self._marked = True
        self._coalescer.mark(self)

    def send(self, message: Outgoing) -> None:
        """Queue an answer (an order op's, server/order_ops.py): never dropped."""
        self._send(message)

    def _send(self, message: Outgoing) -> None:
        """Queue a message that must not be lost; a client too far behind is closed (1008)."""
        self._put_lossless(self._codec.encode(message), _type_of(message))

    def _put_lossless(self, data: bytes, kind: str) -> None:
        if self._closed:
            return
        if not self.queue.put_lossless(data, self._received() if kind == "event" else None):
            reason = (
                f"client too slow: more than {self.queue.limit} undelivered messages that cannot be "
                "dropped (executions/orders/balances/acks)"
            )
            who = self.principal.name or "anonymous"
            self._registry.closings.log(
                logging.WARNING, "slow", "closing a WebSocket client (%s): %s", who, reason
            )
            self._metrics.ws_slow_disconnects.inc()
            self.close(reason, POLICY_VIOLATION)
            return
        self._messages_out[kind] += 1
        self._mark()

    def _send_error(
        self, code: ErrorCode, message: str, request_id: RequestId | None, remedy: str = "", rule: str = ""
    ) -> None:
        self._metrics.ws_errors.labels(code.value).inc()
        self._send(Error(code=code, message=message, id=request_id, remedy=remedy, rule=rule))

    send_error = _send_error


# The codes a `subscribe` is answered with (the order ops' codes are server/order_ops.py's).
_SUBSCRIBE_CODES = frozenset(
    {
        "malformed",
        "invalid_request",
        "unknown_venue",
        "unknown_channel",
        "unknown_symbol",
        "not_authorized",
        "rate_limited",
    }
)


def _code_of(exc: BrokerBridgeError) -> ErrorCode:
    """The code of `exc` in the one table (core/errors.py `WIRE_ERRORS`). An error it names no code
    for (a stream this bridge is not configured for: a `ConfigError`), or a code a subscription is
    not answered with (`unavailable` is REST's), is a request this connection cannot have:
    invalid_request."""
    wire = wire_error_of(exc)
    if wire is None or wire.code not in _SUBSCRIBE_CODES:
        return ErrorCode.INVALID_REQUEST
    return ErrorCode(wire.code)


def _op_of(request: Place | Cancel | Amend) -> str:
    return type(request).__struct_config__.tag or "unknown"  # type: ignore[return-value]


def _type_of(message: Outgoing) -> str:
    return type(message).__struct_config__.tag or "unknown"  # type: ignore[return-value]


# Channels the server adds to the Bridge's: a venue's status feed, and executions without the fills.
STATUS_CHANNEL = "status"
ORDERS_CHANNEL = "orders"
CHANNELS = (*(c.value for c in Channel), ORDERS_CHANNEL, STATUS_CHANNEL)


def _unless_fill(deliver: Callable[[AnyEvent], None], event: AnyEvent) -> None:
    """The `orders` channel: the executions stream's order updates, status and gaps — not the
    fills (they are on `executions`)."""
    if not isinstance(event, Fill):
        deliver(event)
