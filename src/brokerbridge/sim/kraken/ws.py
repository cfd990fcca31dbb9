"""Kraken Spot WebSocket v2 as served by the simulator: the I/O of one connection (`WsSession`).

The session accepts the socket, reads client text into its protocol (ws_protocol.WsProtocol, which
holds the subscriptions and decides every answer), and writes the protocol's frames in order
through one queue, each held back by the `latency_ms` switch; it sends `{"channel":"heartbeat"}`
after a second of silence while anything is subscribed. A stalled feed (`stall` covering this
endpoint: "public" is `/v2`, "private" `/auth/v2`) keeps the socket open and sends nothing at all;
a dropped one closes with 1001, as Cloudflare restarts do. Frames are encoded with msgspec (their
numbers are raw literals at pair precision, numbers.num).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import msgspec
from starlette.websockets import WebSocket

from brokerbridge.sim.faults import send_with_latency
from brokerbridge.sim.kraken.exchange import KrakenExchange
from brokerbridge.sim.kraken.ws_protocol import WsProtocol
from brokerbridge.sim.server import race

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0
DROP_REASON = "CloudFlare WebSocket proxy restarting"


class WsSession:
    def __init__(
        self, exchange: KrakenExchange, websocket: WebSocket, *, private: bool, connection_id: int
    ) -> None:
        self.exchange = exchange
        self.ws = websocket
        self.private = private
        self.protocol = WsProtocol(exchange, self.send, private=private, connection_id=connection_id)
        self._queue: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        self._dropped = asyncio.Event()
        self._last_enqueued = exchange.clock.monotonic()

    async def run(self) -> None:
        await self.ws.accept()
        self.exchange.listeners.add(self.protocol)
        try:
            self.send(self.protocol.status_frame())
            failures = await race(self._read(), self._write(), self._heartbeat(), self._dropped.wait())
            if self._dropped.is_set():
                with contextlib.suppress(Exception):
                    await self.ws.close(code=1001, reason=DROP_REASON)
            for exc in failures:
                log.error("WebSocket session failed", exc_info=exc)
        finally:
            self.exchange.listeners.discard(self.protocol)

    def drop(self) -> None:
        """Close this connection now (fault): code 1001 as Cloudflare restarts do."""
        self._dropped.set()

    def push_status(self) -> None:
        """The engine status changed: Kraken pushes a `status` frame to every connection."""
        self.send(self.protocol.status_frame())

    def send(self, frame: dict[str, Any]) -> None:
        if self.exchange.faults.stalls(self.private):
            return  # a stalled feed: the socket stays open but nothing at all goes out
        now = self.exchange.clock.monotonic()
        self._last_enqueued = now
        self._queue.put_nowait((now, msgspec.json.encode(frame).decode()))

    async def _read(self) -> None:
        while True:
            text = await self.ws.receive_text()
            self.protocol.receive_text(text)

    async def _write(self) -> None:
        await send_with_latency(self.exchange.clock, self.exchange.faults, self._queue, self.ws.send_text)

    async def _heartbeat(self) -> None:
        """`{"channel":"heartbeat"}` once a second of silence, while anything is subscribed."""
        clock = self.exchange.clock
        while True:
            quiet_for = clock.monotonic() - self._last_enqueued
            if quiet_for < HEARTBEAT_S:
                await clock.sleep(HEARTBEAT_S - quiet_for)
            elif self.protocol.subscribed:
                self.send({"channel": "heartbeat"})
                if self.exchange.faults.stalls(self.private):
                    await clock.sleep(HEARTBEAT_S)  # nothing went out; do not spin
            else:
                await clock.sleep(HEARTBEAT_S)
