"""The `/ws` clients connected to one server: counted per key, sent heartbeats, closed at shutdown.

The registry knows a client only by what it asks of one (`RegisteredClient`): server/ws.py's
`ClientConnection` registers itself here, and nothing here imports it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import Protocol

from brokerbridge.core.clock import Clock
from brokerbridge.core.log_limit import LogLimiter
from brokerbridge.server.auth import Principal
from brokerbridge.server.protocol import Codec, Heartbeat

logger = logging.getLogger(__name__)


class RegisteredClient(Protocol):
    @property
    def principal(self) -> Principal: ...

    @property
    def queue_depth(self) -> int: ...

    def queue_heartbeat(self, data: bytes) -> None: ...

    def check_alive(self, now: float, timeout: float) -> None: ...

    async def aclose(self, reason: str) -> None: ...

    def close(self, reason: str, code: int) -> None: ...


# What ends a connection whose credential was withdrawn after its handshake (WebSocket close code
# "policy violation": the client must get a new credential, not just reconnect with the old one).
REVOKED_CLOSE = 1008


class ClientRegistry:
    """The connected clients (so shutdown can tell each of them why it is being closed), counted
    per key for `max_connections_per_key`."""

    def __init__(self, clock: Clock) -> None:
        self._clients: set[RegisteredClient] = set()
        self._per_key: Counter[str] = Counter()
        # Clients closed for flooding or not reading: a crowd of them must not flood the log.
        self.closings = LogLimiter(logger, clock.monotonic)

    def clients(self) -> list[RegisteredClient]:
        return list(self._clients)

    def connections_of(self, key_name: str) -> int:
        return self._per_key[key_name]

    def add(self, client: RegisteredClient) -> None:
        self._clients.add(client)
        if client.principal.name is not None:
            self._per_key[client.principal.name] += 1

    def move(self, client: RegisteredClient, key_name: str, limit: int) -> bool:
        """Count `client` under `key_name` (an `auth` message), unless that key is at `limit`."""
        if self._per_key[key_name] >= limit:
            return False
        self._release(client)
        self._per_key[key_name] += 1
        return True

    def _release(self, client: RegisteredClient) -> None:
        name = client.principal.name
        if name is not None:
            self._per_key[name] -= 1
            if self._per_key[name] <= 0:
                del self._per_key[name]

    def discard(self, client: RegisteredClient) -> None:
        if client in self._clients:
            self._clients.discard(client)
            self._release(client)

    def stats(self) -> tuple[int, list[int]]:
        return len(self._clients), [c.queue_depth for c in self._clients]

    async def close_all(self, reason: str) -> None:
        clients = list(self._clients)
        if clients:
            logger.info("closing %d client connection(s): %s", len(clients), reason)
        await asyncio.gather(*(c.aclose(reason) for c in clients))

    async def run_heartbeats(
        self,
        interval: float,
        client_timeout: float,
        clock: Clock,
        codec: Codec,
        withdrawn: Callable[[Principal], str | None] = lambda principal: None,
    ) -> None:
        """Every `interval` seconds, one heartbeat (encoded once) and a WebSocket ping to every
        client; a client silent for `client_timeout` is closed (`ClientConnection.check_alive`),
        and so is one whose credential was `withdrawn` since its handshake (an access token
        revoked, its browser login signed out: the reason why, else None)."""
        while True:
            await clock.sleep(interval)
            now = clock.monotonic()
            beat = codec.encode(Heartbeat(ts=clock.time()))
            for client in list(self._clients):
                why = withdrawn(client.principal)
                if why is not None:
                    logger.info(
                        "closing a client connection of %s: %s", client.principal.name or "a login", why
                    )
                    client.close(why, REVOKED_CLOSE)
                    continue
                client.queue_heartbeat(beat)
                client.check_alive(now, client_timeout)
