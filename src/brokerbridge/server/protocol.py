"""The `/ws` protocol: every message a client sends or receives, as msgspec Structs.

Client → server messages are tagged by `op`, server → client by `type`. `schemas()` turns each
into a JSON Schema (docs/schemas/ holds them; a test keeps those files equal to this code).
Events are the normalized `brokerbridge.core.events` types, Decimals encoded as strings.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any, Literal

import msgspec

from brokerbridge.core.events import AnyEvent
from brokerbridge.core.orders import AmendRequest, CancelAck, OrderAck, OrderRequest

# Bounds on what a client may send, checked by the decoder before anything else reads the message:
# a request is refused in the time it takes to parse it, and no later step (a venue, a log line, an
# error echoing it) ever handles an unbounded or control-laden string from a client. The longest
# real symbol is about 40 characters (Primary's "MERV - XMEV - GFGC4500DI - 24hs" is 31).
MAX_SYMBOL_LENGTH = 128
MAX_ID_LENGTH = 128
MAX_NAME_LENGTH = 32  # venue and channel names
MAX_KEY_LENGTH = 256  # API keys (config refuses longer ones)
MAX_BATCH_SYMBOLS = 10_000  # symbols of one batch subscribe (max_subscriptions limits it further)
MAX_ID_INT = 2**53  # ids a JavaScript client can hold exactly
# No C0/C1 control characters (newline, ESC…) and no Unicode line or paragraph separator: what a
# client names is printable, so it can be echoed and logged as one line.
PRINTABLE = "^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"

Symbol = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SYMBOL_LENGTH, pattern=PRINTABLE)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_LENGTH, pattern=PRINTABLE)]
RequestId = (
    Annotated[str, msgspec.Meta(max_length=MAX_ID_LENGTH, pattern=PRINTABLE)]
    | Annotated[int, msgspec.Meta(ge=-MAX_ID_INT, le=MAX_ID_INT)]
)


# -- client → server -----------------------------------------------------------------------------
class Subscribe(msgspec.Struct, frozen=True, kw_only=True, tag_field="op", tag="subscribe"):
    """Open a stream — or, with `symbols`, one stream per symbol under one `id` (a batch: one `ack`,
    events of every symbol numbered by one `seq`, `unsubscribe` ends them all). `id` names the
    subscription on this connection (its events carry it). `symbol` and `symbols` are exclusive."""

    id: RequestId
    venue: Name
    channel: Name
    symbol: Symbol | None = None
    # batch: each symbol counts toward max_subscriptions
    symbols: Annotated[tuple[Symbol, ...], msgspec.Meta(max_length=MAX_BATCH_SYMBOLS)] | None = None
    # book only; default: the venue's (Kraken 10, Primary 5)
    depth: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    interval: Annotated[int, msgspec.Meta(ge=1, le=21600)] = 1  # candles only, minutes
    # greeks only (`symbol`: the underlying's ticker, e.g. GGAL): one expiry, an ISO date (none:
    # every listed expiry), and the model (none: the server's [options] model).
    expiry: Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None
    model: Literal["american", "european"] | None = None


class Unsubscribe(msgspec.Struct, frozen=True, kw_only=True, tag_field="op", tag="unsubscribe"):
    """Close the subscription opened by the `subscribe` request with this `id`."""

    id: RequestId


class Ping(msgspec.Struct, frozen=True, kw_only=True, tag_field="op", tag="ping"):
    id: RequestId | None = None


class Auth(msgspec.Struct, frozen=True, kw_only=True, tag_field="op", tag="auth"):
    """Present an API key (instead of the `Authorization` header or `?key=`); answered by an `ack`
    (op `auth`, `stream` null) or a `not_authorized` error. The key is never echoed."""

    key: Annotated[str, msgspec.Meta(max_length=MAX_KEY_LENGTH)]
    id: RequestId | None = None

    def __repr__(self) -> str:
        return f"Auth(key='***', id={self.id!r})"


OrderId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH, pattern=PRINTABLE)]


class Place(msgspec.Struct, frozen=True, kw_only=True, tag_field="op", tag="place"):
    """Place `order` (needs the `trade` scope). Answered by an `ack` (op `place`) whose `order` is
    the `OrderAck` — status `accepted`, or `unknown` when the venue did not answer (the outcome
    follows on `executions`) — or an `error` (order_refused with its `rule`, order_rejected,
    order_conflict, …). Sending the same `client_order_id` again never makes a second order."""

    id: RequestId
    order: OrderRequest


class Cancel(msgspec.Struct, frozen=True, kw_only=True, tag_field="op", tag="cancel"):
    """Cancel the venue's order `order_id` (needs `trade`): an `ack` (op `cancel`) whose `cancel`
    is the `CancelAck`, or an `error` (unknown_order, …)."""

    id: RequestId
    venue: Name
    order_id: OrderId


class Amend(msgspec.Struct, frozen=True, kw_only=True, tag_field="op", tag="amend"):
    """Change an open order's quantity and/or price (needs `trade`): an `ack` (op `amend`) whose
    `order` is the `OrderAck`, or an `error` (invalid_request where the venue cannot amend)."""

    id: RequestId
    amend: AmendRequest


ClientMessage = Subscribe | Unsubscribe | Ping | Auth | Place | Cancel | Amend
ORDER_OPS = ("place", "cancel", "amend")


# -- server → client -----------------------------------------------------------------------------
class ErrorCode(enum.StrEnum):
    MALFORMED = "malformed"  # not JSON text
    INVALID_REQUEST = "invalid_request"  # JSON, but not a valid request (or refused as asked)
    UNKNOWN_VENUE = "unknown_venue"
    UNKNOWN_CHANNEL = "unknown_channel"
    UNKNOWN_SYMBOL = "unknown_symbol"
    NOT_AUTHORIZED = "not_authorized"
    RATE_LIMITED = "rate_limited"
    # Answers to the order ops (core/errors.py WIRE_ERRORS: the same codes as /api's bodies).
    ORDER_REFUSED = "order_refused"  # refused by the bridge before the venue saw it: see `rule`
    ORDER_REJECTED = "order_rejected"  # the venue refused it
    ORDER_CONFLICT = "order_conflict"  # a client_order_id used before with other arguments
    UNKNOWN_ORDER = "unknown_order"
    NOT_LOADED = "not_loaded"
    UNAVAILABLE = "unavailable"  # the venue could not be reached (a cancel: send it again)
    # A cluster node (docs/cluster.md): its Redis does not answer, or it no longer holds the venue.
    CLUSTER_UNAVAILABLE = "cluster_unavailable"  # send it again: another node, or this one later
    FENCED = "fenced"  # another node holds the venue's session now: send it again
    NOT_SENT = "not_sent"  # refused before anything reached the venue: send it again (same client_order_id)


class Ack(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="ack"):
    """The request `id` was accepted (`id` null: an `auth` sent without one). For `subscribe`,
    `streams` names the shared upstream stream of each symbol, in request order, and `stream` the
    first; a venue's later refusal of one arrives as an `error` with the same `id` (naming the
    symbol) while the others go on."""

    id: RequestId | None
    op: str
    stream: str | None = None
    streams: tuple[str, ...] | None = None


class Error(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="error"):
    """A mistake answered, never a closed socket. `id` is the request's (or subscription's) id
    when one could be read."""

    code: ErrorCode
    message: str
    id: RequestId | None = None
    remedy: str = ""
    rule: str = ""  # order_refused: the rule broken (tick_size, lot_size, min_qty, rate_limit, …)


class EventMessage(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="event"):
    """One normalized event of subscription `id`; `seq` counts 1, 2, 3… per subscription."""

    id: RequestId
    seq: int
    event: AnyEvent


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="heartbeat"):
    ts: float  # server wall time, epoch seconds


class Pong(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="pong"):
    ts: float
    id: RequestId | None = None


class OrderAnswer(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="ack", omit_defaults=True):
    """The `ack` of an order op: `id` is the request's; `order` (place, amend) or `cancel` (cancel)
    is the very answer `Bridge.place/amend/cancel` and `/api/orders` give. What happens to the order
    next arrives as `order_update` and `fill` events on an `executions` (or `orders`) subscription."""

    id: RequestId
    op: str  # place | cancel | amend
    order: OrderAck | None = None
    cancel: CancelAck | None = None


# `OrderAnswer` shares the `ack` tag with `Ack` (a client reads one kind of answer), so the two are
# not in one tagged union: the server only encodes these, and `Outgoing` is what it may send.
ServerMessage = Ack | Error | EventMessage | Heartbeat | Pong
Outgoing = ServerMessage | OrderAnswer

MESSAGE_TYPES: dict[str, Any] = {
    "client.subscribe": Subscribe,
    "client.unsubscribe": Unsubscribe,
    "client.ping": Ping,
    "client.auth": Auth,
    "client.place": Place,
    "client.cancel": Cancel,
    "client.amend": Amend,
    "server.ack": Ack,
    "server.order_ack": OrderAnswer,
    "server.error": Error,
    "server.event": EventMessage,
    "server.heartbeat": Heartbeat,
    "server.pong": Pong,
}


def schemas() -> dict[str, bytes]:
    """File name → JSON Schema (pretty, stable) for every message, as docs/schemas/ holds them."""
    out = {}
    for name, kind in MESSAGE_TYPES.items():
        schema = msgspec.json.schema(kind)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = name
        out[f"{name}.schema.json"] = msgspec.json.format(msgspec.json.encode(schema), indent=2) + b"\n"
    return out


EVENT_MEMO = 256  # encoded events kept: enough for every stream's latest event during one fan-out


class Codec:
    """One decoder for client messages, one encoder for server messages (Decimals as strings).

    An `event` message is encoded in two parts, so an event going to many clients is encoded once
    (`event_body`, memoized by the event object the Bridge hands to every subscriber) and each
    client's copy is that text spliced between its subscription's `event_head` and `seq`
    (`event_text`) — the same bytes as `encode(EventMessage(...))`, which a test checks.
    """

    def __init__(self) -> None:
        self._decoder = msgspec.json.Decoder(ClientMessage)
        self._encoder = msgspec.json.Encoder(decimal_format="string")
        # id(event) → (event, its JSON): the entry keeps the event alive, so its id is not reused.
        self._bodies: dict[int, tuple[AnyEvent, bytes]] = {}

    def decode(self, text: str | bytes) -> ClientMessage:
        try:
            return self._decoder.decode(text)
        except RecursionError:  # msgspec recurses per nesting level: answer `malformed`, not crash
            raise msgspec.DecodeError("JSON nested too deeply") from None

    def encode(self, message: Outgoing) -> bytes:
        return self._encoder.encode(message)

    def event_body(self, event: AnyEvent) -> bytes:
        """`event` as JSON (UTF-8), encoded once however many clients receive it."""
        bodies = self._bodies
        hit = bodies.get(id(event))
        if hit is not None and hit[0] is event:
            return hit[1]
        body = self._encoder.encode(event)
        if len(bodies) >= EVENT_MEMO:
            del bodies[next(iter(bodies))]  # the oldest: fan-out of an event ends before many more arrive
        bodies[id(event)] = (event, body)
        return body

    def event_head(self, sub_id: RequestId) -> bytes:
        """What precedes `seq` in every `event` message of subscription `sub_id`."""
        return b'{"type":"event","id":' + self._encoder.encode(sub_id) + b',"seq":'


# An `event` message is EVENT_MESSAGE % (head, seq, tail): the subscription's head, its seq, and
# the event's tail — field order as `EventMessage` encodes. The fan-out (server/hub.py) keeps the
# tail of each event, made once, and formats this per client.
EVENT_MESSAGE = b"%b%d%b"


def event_tail(body: bytes) -> bytes:
    """What follows `seq` in every `event` message carrying the event encoded as `body`."""
    return b',"event":' + body + b"}"


def event_text(head: bytes, seq: int, body: bytes) -> bytes:
    """An `event` message from its parts (see `Codec`)."""
    return EVENT_MESSAGE % (head, seq, event_tail(body))


class _IdOnly(msgspec.Struct):
    id: Any = None


_ID_READER = msgspec.json.Decoder(_IdOnly)
_ID_CHECK = msgspec.json.Decoder(RequestId)


def request_id_of(text: str | bytes) -> RequestId | None:
    """The `id` of an invalid request, if it has a valid one (to label the error): an id beyond
    the bounds of `RequestId` is not echoed."""
    try:
        value = _ID_READER.decode(text).id
    except (msgspec.DecodeError, RecursionError):
        return None
    if isinstance(value, str | int) and not isinstance(value, bool):
        try:
            return _ID_CHECK.decode(msgspec.json.encode(value))
        except msgspec.ValidationError:
            return None
    return None


_FIELD_RULES = {
    "symbol": f"a symbol is 1 to {MAX_SYMBOL_LENGTH} characters without control characters, e.g. "
    '"BTC/USD" or "MERV - XMEV - GGAL - 24hs"',
    "symbols": f"symbols: at most {MAX_BATCH_SYMBOLS} symbols, each 1 to {MAX_SYMBOL_LENGTH} characters "
    "without control characters",
    "id": f"an id is a string of at most {MAX_ID_LENGTH} characters without control characters, or an "
    f"integer within ±{MAX_ID_INT}",
    "venue": f"a venue name: at most {MAX_NAME_LENGTH} characters, e.g. kraken, primary",
    "channel": f"a channel name: at most {MAX_NAME_LENGTH} characters, e.g. ticker, book, trades",
    "key": f"an API key is at most {MAX_KEY_LENGTH} characters",
    "depth": "depth: book levels per side, 1 to 1000 (Kraken 10, 25, 100, 500, 1000; Primary 1 to 5)",
    "interval": "interval: candle minutes, 1 to 21600 (Kraken 1 5 15 30 60 240 1440 10080 21600)",
    "expiry": 'expiry (greeks only): one expiry as an ISO date, e.g. "2026-12-18"; none: every expiry',
    "model": 'model (greeks only): "american" (Bjerksund–Stensland 2002) or "european" '
    "(Black–Scholes–Merton)",
    "order": 'order: {"venue", "symbol", "side": "buy"|"sell", "qty": "0.5", "type": "limit"|"market", '
    '"price": "30000" (limit only), "client_order_id"?, "time_in_force"?} — amounts as decimal strings',
    "amend": 'amend: {"venue", "order_id", "qty"?, "price"?} — amounts as decimal strings',
    "order_id": f"order_id: the venue's order id, 1 to {MAX_ID_LENGTH} characters",
}
# msgspec's errors end with the path of the value they refuse (" - at `$.symbols[3]`").
_AT_FIELD = re.compile(r"at `\$\.(\w+)")


ERROR_TEXT = 200  # characters of a decoder's message kept (it may quote the client's value)


def invalid_text(error: msgspec.MsgspecError) -> str:
    """The decoder's message, bounded: msgspec quotes a value it refuses (an unknown `op` of
    900 kB came back whole), so a long one is cut before the path it names."""
    text = str(error)
    if len(text) <= ERROR_TEXT:
        return text
    head, at, path = text.rpartition(" - at ")
    if not at or len(path) > ERROR_TEXT:
        head, at, path = text, "", ""
    return f"{head[:ERROR_TEXT]}… (+{len(head) - ERROR_TEXT} characters){at}{path}"


def remedy_for(error: msgspec.ValidationError) -> str:
    """What to send instead of a request the decoder refused: the rule of the field it names."""
    field = _AT_FIELD.search(str(error))
    rule = _FIELD_RULES.get(field.group(1)) if field else None
    return rule or "send a JSON object whose op is subscribe, unsubscribe, ping, auth, place, cancel or amend"
