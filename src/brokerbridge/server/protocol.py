"""The `/ws` protocol: every message a client sends or receives, as msgspec Structs.

Client → server messages are tagged by `op`, server → client by `type`. `schemas()` turns each
into a JSON Schema (docs/schemas/ holds them; a test keeps those files equal to this code).
Events are the normalized `brokerbridge.core.events` types, Decimals encoded as strings.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from brokerbridge.core.events import AnyEvent

RequestId = str | int


# -- client → server -----------------------------------------------------------------------------
class Subscribe(msgspec.Struct, frozen=True, kw_only=True, tag_field="op", tag="subscribe"):
    """Open a stream — or, with `symbols`, one stream per symbol under one `id` (a batch: one `ack`,
    events of every symbol numbered by one `seq`, `unsubscribe` ends them all). `id` names the
    subscription on this connection (its events carry it). `symbol` and `symbols` are exclusive."""

    id: RequestId
    venue: str
    channel: str
    symbol: str | None = None
    symbols: tuple[str, ...] | None = None  # batch: each symbol counts toward max_subscriptions
    depth: int | None = None  # book only; default: the venue's (Kraken 10, Primary 5)
    interval: int = 1  # candles only, minutes


class Unsubscribe(msgspec.Struct, frozen=True, kw_only=True, tag_field="op", tag="unsubscribe"):
    """Close the subscription opened by the `subscribe` request with this `id`."""

    id: RequestId


class Ping(msgspec.Struct, frozen=True, kw_only=True, tag_field="op", tag="ping"):
    id: RequestId | None = None


class Auth(msgspec.Struct, frozen=True, kw_only=True, tag_field="op", tag="auth"):
    """Present an API key (instead of the `Authorization` header or `?key=`); answered by an `ack`
    (op `auth`, `stream` null) or a `not_authorized` error. The key is never echoed."""

    key: str
    id: RequestId | None = None

    def __repr__(self) -> str:
        return f"Auth(key='***', id={self.id!r})"


ClientMessage = Subscribe | Unsubscribe | Ping | Auth


# -- server → client -----------------------------------------------------------------------------
class ErrorCode(enum.StrEnum):
    MALFORMED = "malformed"  # not JSON text
    INVALID_REQUEST = "invalid_request"  # JSON, but not a valid request (or refused as asked)
    UNKNOWN_VENUE = "unknown_venue"
    UNKNOWN_CHANNEL = "unknown_channel"
    UNKNOWN_SYMBOL = "unknown_symbol"
    NOT_AUTHORIZED = "not_authorized"
    RATE_LIMITED = "rate_limited"


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


ServerMessage = Ack | Error | EventMessage | Heartbeat | Pong

MESSAGE_TYPES: dict[str, Any] = {
    "client.subscribe": Subscribe,
    "client.unsubscribe": Unsubscribe,
    "client.ping": Ping,
    "client.auth": Auth,
    "server.ack": Ack,
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

    def encode(self, message: ServerMessage) -> bytes:
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


def request_id_of(text: str | bytes) -> RequestId | None:
    """The `id` of an invalid request, if it has a readable one (to label the error)."""
    try:
        raw = msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError):
        return None
    if isinstance(raw, dict):
        value = raw.get("id")
        if isinstance(value, str | int) and not isinstance(value, bool):
            return value
    return None
