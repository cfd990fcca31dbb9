"""When each WebSocket client last sent anything — frames *and* protocol pings.

Pings never reach the ASGI application (the WebSocket layer answers them), yet they are what keeps a
pyRofex socket alive (§4.1). So the simulator runs uvicorn with a WebSocket protocol class that
stamps every received chunk of bytes, keyed by the peer address that the ASGI scope also carries,
on the simulator's clock (through `PrimarySimulator.data_received`, which a client reaching the
simulator in memory, brokerbridge.io.inprocess, calls for its frames and pings). The same class
marks a refused handshake (HTTP 401/503 denial response) as complete, so uvicorn does not log it as
an application error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from brokerbridge.core.clock import Clock

Peer = tuple[str, int]


class ActivityLog:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._last: dict[Peer, float] = {}

    def touch(self, peer: Peer | None) -> None:
        if peer is not None:
            self._last[peer] = self._clock.monotonic()

    def last(self, peer: Any) -> float | None:
        return self._last.get(_peer(peer)) if peer is not None else None

    def forget(self, peer: Any) -> None:
        if peer is not None:
            self._last.pop(_peer(peer), None)


def _peer(address: Any) -> Peer:
    """The ASGI scope's `client` (a list or tuple of host and port) as a dict key."""
    host, port = address
    return str(host), int(port)


def tracking_protocol(bytes_from: Callable[[Peer], None]) -> type[asyncio.Protocol]:
    """uvicorn's sans-I/O websockets protocol, calling `bytes_from(client)` on every received chunk."""

    class TrackingWebSocketProtocol(WebSocketsSansIOProtocol):
        def data_received(self, data: bytes) -> None:
            if self.client is not None:
                bytes_from(self.client)
            super().data_received(data)

        async def send(self, message: Any) -> None:
            await super().send(message)
            # A denial response (HTTP 401/503 instead of 101) is a complete handshake; uvicorn
            # would otherwise log "returned without completing handshake" after it.
            if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
                self.handshake_complete = True

    return TrackingWebSocketProtocol
