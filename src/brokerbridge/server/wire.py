"""The `/ws` socket itself: an `asyncio.Protocol` per connection around websockets' sans-I/O
`ServerProtocol`, written for fan-out (issue 8, bench/README.md "Fan-out").

uvicorn serves HTTP and hands every WebSocket upgrade to this protocol (`uvicorn.Config(ws=…)`):
one port, and none of the ASGI layers on the message path. What it does differently from an ASGI
WebSocket:

- **Many frames, one write.** A connection's queued messages are framed together and written with
  one `transport.write` (`write_texts`): the write — a syscall — is most of what a delivery costs.
  When to write is the `Coalescer`'s business (server/coalesce.py).
- **Frames are made here, not by websockets**: a server's text frame is two to ten header bytes and
  the payload (unmasked, unfragmented, and uncompressed — permessage-deflate is not offered: each
  client would compress the same text again). websockets' sans-I/O core does everything else: the
  handshake, reading the client's masked frames, ping/pong, the close handshake and its checks.
- **Back-pressure** is the transport's: while its buffer is over the high-water mark nothing more is
  written (`writable` is False) and the connection's outbox holds — and conflates — its messages.

Whether a handshake is accepted, and what serves the connection then, is the `Gate`'s decision
(server/ws.py): this module knows sockets and frames, not clients.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol, cast

from websockets.datastructures import Headers
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from brokerbridge.core.log_limit import clip
from brokerbridge.server.log_redaction import redact_credentials

logger = logging.getLogger(__name__)


class _WarningsOnly(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets' logger for our connections: its debug lines carry request headers and client
    frames (keys, tokens, cookies) and its info lines say "connection open" for every client —
    only its warnings and errors get through."""

    def isEnabledFor(self, level: int) -> bool:
        return level >= logging.WARNING and self.logger.isEnabledFor(level)


_PROTOCOL_LOGGER = _WarningsOnly(logger, {})

# Server frames: FIN + text opcode; then the payload length (7 bits, or 126 + 16 bits, 127 + 64 bits).
_SHORT_HEADERS = [bytes((0x81, n)) for n in range(126)]


def text_frame_header(length: int) -> bytes:
    if length < 126:
        return _SHORT_HEADERS[length]
    if length < 1 << 16:
        return b"\x81\x7e" + length.to_bytes(2, "big")
    return b"\x81\x7f" + length.to_bytes(8, "big")


class Peer(Protocol):
    """What serves an accepted connection (server/ws.py's `ClientConnection`)."""

    def received(self, data: str | bytes) -> None: ...

    def writable_again(self) -> None: ...

    def lost(self) -> None: ...


class Gate(Protocol):
    """Decides on each handshake: a `Response` refuses it (sent as is), a callable accepts it and
    makes what serves the connection, given the wire it will write to."""

    max_message_bytes: int
    close_timeout: float

    def admit(self, request: Request, address: str) -> Response | Callable[[WsWire], Peer]:
        """`address`: the client's, as the socket says."""
        ...


def json_response(status: int, reason: str, body: bytes, extra: dict[str, str] | None = None) -> Response:
    headers = Headers(
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
            *(extra or {}).items(),
        ]
    )
    return Response(status, reason, headers, body)


class WsWire(asyncio.Protocol):
    """One WebSocket connection's bytes and frames."""

    def __init__(self, gate: Gate, server_state: Any = None) -> None:
        self._gate = gate
        self._proto = ServerProtocol(max_size=gate.max_message_bytes, logger=_PROTOCOL_LOGGER)
        self._transport: asyncio.Transport | None = None
        self._peer: Peer | None = None
        self._paused = False
        self._fragments: list[bytes] | None = None  # a fragmented message being read
        self._fragments_text = False
        self._closed: asyncio.Future[None] | None = None  # made when someone waits for it
        self._lost = False
        # Anything read from the peer since the heartbeat loop last looked (`ClientConnection.
        # check_alive`): a flag, not a clock read, on the path every client frame takes.
        self.heard = False
        self._abort_timer: asyncio.TimerHandle | None = None
        # uvicorn's registry of open connections: `shutdown()` is called on each when it stops.
        self._connections: set[Any] | None = getattr(server_state, "connections", None)
        self.address = "unknown"  # the client's address (set at the handshake)

    # -- what the server writes ---------------------------------------------------------------
    @property
    def writable(self) -> bool:
        return not self._paused and self._proto.state is State.OPEN and not self._lost

    def write_texts(self, payloads: list[bytes]) -> None:
        """Text frames with these (UTF-8 JSON) payloads, in one write."""
        transport = self._transport
        if transport is None or self._proto.state is not State.OPEN:
            return
        parts: list[bytes] = []
        append = parts.append
        for payload in payloads:
            append(text_frame_header(len(payload)))
            append(payload)
        transport.write(b"".join(parts))

    def ping(self) -> None:
        """A WebSocket ping. Every client library and browser answers it with a pong by itself, so a
        peer that stays silent after pings is gone — which a half-open TCP connection never says."""
        if self._proto.state is State.OPEN and not self._lost:
            self._proto.send_ping(b"")
            self._send_pending()

    def close(self, code: int, reason: str) -> None:
        """Start the close handshake: a close frame behind what is already written. The peer has
        `close_timeout` seconds to answer (a client that reads nothing cannot), then the socket goes."""
        if self._proto.state is State.OPEN:
            self._proto.send_close(code, reason)
            self._send_pending()
        if self._abort_timer is None and not self._lost and self._transport is not None:
            loop = asyncio.get_running_loop()
            self._abort_timer = loop.call_later(self._gate.close_timeout, self._abort)

    async def wait_closed(self) -> None:
        if self._lost:
            return
        if self._closed is None:
            self._closed = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._closed)

    def shutdown(self) -> None:
        """uvicorn stopping (after the server told its clients why, see BridgeServer.shutdown)."""
        self.close(CloseCode.GOING_AWAY, "server shutting down")

    def _abort(self) -> None:
        if self._transport is not None and not self._lost:
            self._transport.abort()

    # -- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        if self._connections is not None:
            self._connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.heard = True
        proto = self._proto
        try:
            proto.receive_data(data)
        except EOFError:  # data after the end of the stream: nothing to read any more
            return
        for event in proto.events_received():
            if isinstance(event, Frame):
                self._frame(event)
            elif isinstance(event, Request):
                self._handshake(event)
        self._send_pending()

    def eof_received(self) -> bool | None:
        self._proto.receive_eof()
        self._send_pending()
        return None

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._peer is not None:
            self._peer.writable_again()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._abort_timer is not None:
            self._abort_timer.cancel()
        if self._connections is not None:
            self._connections.discard(self)
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        peer, self._peer = self._peer, None
        if peer is not None:
            peer.lost()

    # -- inside -------------------------------------------------------------------------------
    def _handshake(self, request: Request) -> None:
        proto = self._proto
        peer = self._transport.get_extra_info("peername") if self._transport else None
        address = str(peer[0]) if isinstance(peer, tuple) else "unknown"
        self.address = address
        decision = self._gate.admit(request, address)
        response = decision if isinstance(decision, Response) else proto.accept(request)
        if logger.isEnabledFor(logging.INFO):  # an access line, as uvicorn writes for HTTP
            where = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "-"
            path = clip(redact_credentials(request.path), 200)  # the client's text: quoted, bounded
            logger.info('%s - "WebSocket %s" %d', where, path, response.status_code)
        proto.send_response(response)
        if isinstance(decision, Response):
            return
        if response.status_code == 101:
            self._send_pending()  # the 101 goes before anything the peer queues when it starts
            self._peer = decision(self)

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        data = cast(bytes, frame.data)  # the parser's frames hold bytes
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if frame.fin:
                self._deliver(data, opcode is Opcode.TEXT)
            else:
                self._fragments, self._fragments_text = [data], opcode is Opcode.TEXT
        elif opcode is Opcode.CONT and self._fragments is not None:
            self._fragments.append(data)
            if sum(map(len, self._fragments)) > self._gate.max_message_bytes:
                self._fragments = None
                self.close(CloseCode.MESSAGE_TOO_BIG, "message too big")
            elif frame.fin:
                data, self._fragments = b"".join(self._fragments), None
                self._deliver(data, self._fragments_text)
        elif opcode is Opcode.CLOSE and self._abort_timer is None and self._transport is not None:
            # websockets answers the peer's close frame and then closes our end; the timer is for a
            # peer whose unread data keeps that answer from ever being flushed.
            loop = asyncio.get_running_loop()
            self._abort_timer = loop.call_later(self._gate.close_timeout, self._abort)

    def _deliver(self, data: bytes, text: bool) -> None:
        peer = self._peer
        if peer is None or self._proto.state is not State.OPEN:
            return
        if text:
            try:
                peer.received(data.decode())
            except UnicodeDecodeError:
                self.close(CloseCode.INVALID_DATA, "invalid UTF-8 in a text message")
        else:
            peer.received(data)

    def _send_pending(self) -> None:
        transport = self._transport
        if transport is None:
            return
        for data in self._proto.data_to_send():
            if data:
                transport.write(data)
            else:  # websockets' "end of stream": the server closes the TCP connection
                transport.close()
