"""Stream credentials (e.g. Kraken's WebSocket token): fetched single-flight, refreshed early.

* `get()` before every private (re)connect: the current token while it is younger than
  `refresh_interval` (Kraken accepts a token on a new connection within 15 min of issue, so a
  reconnect needs no REST call), else a new one; concurrent callers share one request.
* `reject(token)` when the venue refused a token: the next `get()` fetches a new one.
* `run_refresher()` fetches a new token every `refresh_interval` (default 10 min, under Kraken's
  15-minute "use within" limit) and hands it to `on_token`, so new subscriptions on a long-lived
  connection never carry a token older than the limit.
Tokens are secrets: they are never logged; only their age and expiry are.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from brokerbridge.core.clock import Clock
from brokerbridge.core.errors import BrokerBridgeError
from brokerbridge.core.secret import Secret

logger = logging.getLogger(__name__)

Fetch = Callable[[], Awaitable[tuple[str, float]]]  # → (token, lifetime seconds)


class TokenManager:
    def __init__(
        self,
        fetch: Fetch,
        *,
        clock: Clock,
        venue: str,
        refresh_interval: float = 600.0,
        retry_interval: float = 15.0,
        hold_off: float = 60.0,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._venue = venue
        self._refresh_interval = refresh_interval
        self._retry_interval = retry_interval
        self._hold_off = hold_off
        self._failure: tuple[BrokerBridgeError, float] | None = None  # last failed fetch and when
        self._token: Secret | None = None
        self._issued_at: float | None = None  # monotonic
        self._lifetime = 0.0
        self._inflight: asyncio.Task[str] | None = None
        self._rejected = False  # the venue refused the current token
        self.fetches = 0
        self._recent: deque[str] = deque(maxlen=8)  # tokens that may still be on a live socket
        self.on_token: Callable[[str], None] | None = None

    def redact(self, text: str) -> str:
        """`text` with every recently issued token masked (for logs of frames that carried one)."""
        for token in self._recent:
            text = text.replace(token, "***")
        return text

    @property
    def expires_at(self) -> float | None:
        """Wall-clock time the current token must have been used by (None before the first)."""
        if self._issued_at is None:
            return None
        return self._clock.time() + (self._issued_at + self._lifetime - self._clock.monotonic())

    async def get(self, *, fresh: bool = False, replacing: str | None = None) -> str:
        """The current token; a new one when `fresh`, when none yet, or when it is due.

        `replacing`: the token a caller saw refused — if another caller already replaced it, that
        newer token is returned instead of logging in again (each login may revoke the last one).
        Failures are remembered: a refused login is not retried for `hold_off` seconds and other
        failures not for `retry_interval`, however many callers ask — no login storms.
        """
        current = self._token.reveal() if self._token is not None else None
        if current is not None and replacing is not None and current != replacing:
            return current
        if current is not None and not fresh and not self._rejected and not self._too_old():
            return current
        if self._failure is not None and self._inflight is None:
            error, failed_at = self._failure
            pause = self._retry_interval if error.retryable else self._hold_off
            if self._clock.monotonic() - failed_at < pause:
                raise error
        if self._inflight is None:
            # The fetch runs as its own task so that one waiter being cancelled (say, a
            # reconnect abandoned at shutdown) never cancels the fetch the others wait for.
            self._inflight = asyncio.get_running_loop().create_task(self._fetch_once(), name="token-fetch")
        return await asyncio.shield(self._inflight)

    async def _fetch_once(self) -> str:
        try:
            token, lifetime = await self._fetch()
        except BrokerBridgeError as exc:
            self._failure = (exc, self._clock.monotonic())
            raise
        finally:
            self._inflight = None
        self._failure = None
        self._rejected = False
        self._token = Secret(token)
        self._recent.append(token)
        self._issued_at = self._clock.monotonic()
        self._lifetime = lifetime
        self.fetches += 1
        logger.info("%s: Successfully retrieved new auth token (valid for %.0fs)", self._venue, lifetime)
        if self.on_token is not None:
            self.on_token(token)
        return token

    def reject(self, token: str | None) -> None:
        """The venue refused `token`: unless it was replaced already, the next `get()` fetches."""
        if token is not None and self._token is not None and self._token.reveal() == token:
            self._rejected = True

    def _too_old(self) -> bool:
        assert self._issued_at is not None
        return self._clock.monotonic() - self._issued_at >= min(self._refresh_interval, self._lifetime)

    async def run_refresher(self) -> None:
        """Refresh proactively forever; failures are logged and retried sooner, never fatal."""
        while True:
            if self._issued_at is None:
                # Nothing private in use yet: no token to keep fresh.
                await self._clock.sleep(self._refresh_interval)
                continue
            wait = self._issued_at + self._refresh_interval - self._clock.monotonic()
            if wait > 0:
                await self._clock.sleep(wait)
                continue  # re-check: someone may have fetched a fresh one meanwhile (a reconnect)
            try:
                await self.get(fresh=True)
            except BrokerBridgeError as exc:
                logger.warning("%s: Token refresh failed: %s", self._venue, exc)
                await self._clock.sleep(self._retry_interval)
            except Exception:  # a bug must not stop refreshing (nor take the streams down)
                logger.exception("%s: Token refresh failed unexpectedly (a bug)", self._venue)
                await self._clock.sleep(self._retry_interval)
