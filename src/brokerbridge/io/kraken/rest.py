"""Kraken REST over HTTP: the pure codec (venues.kraken.rest) plus httpx and a nonce lock.

`call(request)` sends a `Request[T]` built by the codec (`codec.open_orders_request()`) and returns
its answer as a `T`; private requests are signed and go one at a time.

Private calls are serialised under one lock from nonce to response: the nonce must arrive at
Kraken strictly increasing per key, and two concurrent requests could otherwise overtake each
other on the wire. Public calls run concurrently.

Private calls are also paced by a local copy of Kraken's call counter (+1 per call, +2 for the
history calls, decaying by `rate_limit_decay` per second, at most `rate_limit_max`), so a burst of
calls waits its turn instead of earning `EAPI:Rate limit exceeded` and a lockout.

Calls that wait for room are served first come, first served: a call costing 2 (the history
calls) is never overtaken for good by a stream of cheaper ones. `priority=True` (the WebSocket
token: a private stream waits on it) skips that queue: ordinary calls leave `PRIORITY_HEADROOM`
of the counter unused, so a priority call rarely waits for room, and it takes the nonce lock
ahead of the ordinary calls waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import TypeVar

from brokerbridge.core.clock import Clock, SystemClock
from brokerbridge.core.config import KrakenConfig
from brokerbridge.core.errors import ConfigError, InvalidNonce
from brokerbridge.core.rest import Request
from brokerbridge.io.http import HttpClient
from brokerbridge.venues.kraken import rest as codec
from brokerbridge.venues.kraken.auth import NonceSource

logger = logging.getLogger(__name__)

# Kraken's REST call counter costs; trading calls use a separate per-pair limiter.
_COSTS = {"TradesHistory": 2, "ClosedOrders": 2, "AddOrder": 0, "CancelOrder": 0, "AmendOrder": 0}
PRIORITY_HEADROOM = 1.0  # counter points ordinary calls leave free for priority ones
T = TypeVar("T")


class _Turns:
    """One private call at a time (nonce order), priority callers served first, then FIFO."""

    def __init__(self) -> None:
        self._busy = False
        self._waiting: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (deque(), deque())

    @contextlib.asynccontextmanager
    async def turn(self, *, priority: bool) -> AsyncIterator[None]:
        if self._busy:
            waiter = asyncio.get_running_loop().create_future()
            queue = self._waiting[0 if priority else 1]
            queue.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._release()  # handed the turn just as we were cancelled: pass it on
                else:
                    with contextlib.suppress(ValueError):
                        queue.remove(waiter)
                raise
        self._busy = True
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        for queue in self._waiting:
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the turn passes on: still busy
                    return
        self._busy = False


class KrakenRestClient:
    def __init__(
        self,
        config: KrakenConfig,
        *,
        http: HttpClient | None = None,
        nonces: NonceSource | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._config = config
        self._clock = clock or SystemClock()
        self._counter = 0.0
        self._counter_at = self._clock.monotonic()
        self._http = http or HttpClient(
            timeout=config.request_timeout, deadline=config.request_deadline, clock=self._clock
        )
        self._nonces = nonces or NonceSource(self._clock.time, scale=config.nonce_scale)
        self._turns = _Turns()  # the nonce lock
        self._pacing = _Turns()  # the queue of calls waiting for counter room
        self.calls = 0

    @property
    def has_credentials(self) -> bool:
        return self._config.has_credentials

    async def call(self, request: Request[T], *, priority: bool = False) -> T:
        """Send `request` (signed and paced when private); its answer, or the mapped error raised.

        `priority` (private calls): served before the ordinary calls waiting for counter room or
        for the nonce lock — for the WebSocket token, which a private stream waits on.
        """
        if not codec.is_private(request):
            return await self._send(codec.public_wire(request), request)
        method = request.name
        if not self._config.has_credentials:
            raise ConfigError(
                f"Kraken {method} needs API credentials",
                remedy="set kraken.api_key and kraken.api_secret (or BROKERBRIDGE_KRAKEN_API_KEY/_SECRET)",
            )
        assert self._config.api_key is not None and self._config.api_secret is not None
        # Pace outside the lock: a call waiting for counter room must not hold up the calls that
        # cost nothing (AddOrder, CancelOrder) or the others already paid for.
        await self._pace(_COSTS.get(method, 1), priority=priority)
        async with self._turns.turn(priority=priority):
            for attempt in (1, 2):
                wire = codec.signed_wire(
                    request,
                    nonce=self._nonces.next(),
                    api_key=self._config.api_key,
                    secret=self._config.api_secret.reveal(),
                )
                try:
                    return await self._send(wire, request)
                except InvalidNonce:
                    # A fresh, larger nonce fixes a clock step; a second failure is a shared key.
                    if attempt == 2:
                        raise
                    logger.warning("kraken: EAPI:Invalid nonce on %s; retrying once with a new nonce", method)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _pace(self, cost: int, *, priority: bool = False) -> None:
        """Wait until Kraken's counter (as we model it) has room for `cost`, then spend it."""
        limit = self._config.rate_limit_max
        if priority or cost == 0:
            await self._room(cost, limit)
            return
        async with self._pacing.turn(priority=False):
            await self._room(cost, max(limit - PRIORITY_HEADROOM, cost))

    async def _room(self, cost: int, limit: float) -> None:
        decay = self._config.rate_limit_decay
        while True:
            now = self._clock.monotonic()
            self._counter = max(0.0, self._counter - (now - self._counter_at) * decay)
            self._counter_at = now
            if self._counter + cost <= limit:
                self._counter += cost
                return
            await self._clock.sleep((self._counter + cost - limit) / decay)

    async def _send(self, wire: codec.RestRequest, request: Request[T]) -> T:
        self.calls += 1
        response = await self._http.request(
            wire.method,
            self._config.rest_url + wire.target,
            content=wire.body or None,
            headers=wire.headers,
        )
        return codec.parse_answer(request, response.status, response.body)

    async def aclose(self) -> None:
        await self._http.aclose()
