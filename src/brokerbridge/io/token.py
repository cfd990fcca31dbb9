"""Stream credentials (Kraken's WebSocket token, Primary's login token): fetched single-flight,
refreshed early, failures paced.

* `get()` before every private (re)connect: the current token while it is younger than
  `refresh_interval` (Kraken accepts a token on a new connection within 15 min of issue, so a
  reconnect needs no REST call), else a new one; concurrent callers share one request.
* `reject(token)` when the venue refused a token: the next `get()` fetches a new one — at once the
  first time (a stale or invalidated token), but with `refused_retry` (opt-in; Kraken: 1–2 s,
  doubling up to 30–60 s, jittered) when the token refused was issued less than `REFUSAL_STREAK`
  ago and none was `accepted()` since, i.e. the venue issues tokens and refuses every one of them.
  Without this, the refusal → fresh token → refusal cycle ran at the speed of the network (Kraken:
  ~20 GetWebSocketsToken a second until `EAPI:Rate limit exceeded`).
* A failed fetch is remembered: until its retry is due every caller gets the same error from memory,
  so however many streams, polls and renewals ask, the venue sees one attempt per retry. Retries
  follow `retry` (jittered, capped at 10 s by default, reset by a success): after the venue accepts
  us again (an account unlocked, a permission granted) a new token comes within the cap; a refusal
  that retrying cannot change (a missing permission: not `retryable`) follows `refused_retry`
  instead when one is given. Credentials the venue has never accepted in this run
  (`AuthenticationError` before any success: a wrong password or key) are retried only every
  `never_accepted_hold_off` (60 s), so a typo does not lock the account at brokers that lock after
  a few failed logins.
* `aclose()` ends a fetch still under way (at shutdown nobody waits for it any more, and the HTTP
  client it runs on is about to close: left running it failed with a `ReadError` that no one
  retrieved, and asyncio printed the traceback at exit).
* `run_refresher()` fetches a new token every `refresh_interval` (default 10 min, under Kraken's
  15-minute "use within" limit) and hands it to `on_token`, so new subscriptions on a long-lived
  connection never carry a token older than the limit; after a failure it retries when due (while
  `needed()`), so a stream waiting for a token is told (`on_token`) as soon as one is issued.
Tokens are secrets: they are never logged; only their age and expiry are.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable

from brokerbridge.core.backoff import BackoffPolicy
from brokerbridge.core.clock import Clock, sleep_unless
from brokerbridge.core.errors import AuthenticationError, BrokerBridgeError
from brokerbridge.core.secret import Secret

logger = logging.getLogger(__name__)

Fetch = Callable[[], Awaitable[tuple[str, float]]]  # → (token, lifetime seconds)
# Failed fetches are retried after 0.5–1 s, then doubling up to 5–10 s (jittered): the cap bounds how
# long a stream stays down once the venue accepts us again, at six or so attempts a minute meanwhile.
RETRY = BackoffPolicy(initial=1.0, factor=2.0, cap=10.0, immediate_attempts=0)
NEVER_ACCEPTED_HOLD_OFF = 60.0
# A venue that refuses what it issues (or refuses to issue: a missing permission) is asked again
# after 1–2 s, then doubling up to 30–60 s: a few requests a minute at most, and a permission
# granted meanwhile is seen within a minute (Kraken itself takes a minute or two to apply it).
REFUSED_RETRY = BackoffPolicy(initial=2.0, factor=2.0, cap=60.0, immediate_attempts=0)
# A token refused less than this long after it was issued counts as one more refusal in a row; one
# that served longer starts the count again (it was accepted, then went stale or was invalidated).
REFUSAL_STREAK = 60.0


class TokenManager:
    def __init__(
        self,
        fetch: Fetch,
        *,
        clock: Clock,
        venue: str,
        refresh_interval: float = 600.0,
        retry: BackoffPolicy = RETRY,
        never_accepted_hold_off: float = NEVER_ACCEPTED_HOLD_OFF,
        rng: random.Random | None = None,
        needed: Callable[[], bool] = lambda: True,
        refused_retry: BackoffPolicy | None = None,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._venue = venue
        self._refresh_interval = refresh_interval
        self._retry = retry
        self._rng = rng or random.Random()
        self._retry_delays = retry.delays(self._rng)
        self._never_accepted_hold_off = never_accepted_hold_off
        self._needed = needed
        self._refused_retry = refused_retry
        self._denied_delays = (refused_retry or retry).delays(self._rng)  # fetches refused
        self._refused_delays = (refused_retry or retry).delays(self._rng)  # tokens refused in a row
        self.refusals = 0  # tokens refused in a row, each soon after it was issued
        self._refetch_at = 0.0  # after such refusals, the next fetch goes no earlier (monotonic)
        self._failure: BrokerBridgeError | None = None  # the last fetch failed with this…
        self._retry_at = 0.0  # …and the next may go out at this monotonic time
        self._failed = asyncio.Event()  # wakes the refresher to retry a failed fetch
        self._accepted = False  # the venue issued a token in this run
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
        Failures are remembered: until the retry is due (see the module docstring) every caller
        gets the last error from memory — no login storms.
        """
        current = self._token.reveal() if self._token is not None else None
        if current is not None and replacing is not None and current != replacing:
            return current
        if current is not None and not fresh and not self._rejected and not self._too_old():
            return current
        if self._inflight is None and self._failure is not None and self._clock.monotonic() < self._retry_at:
            raise self._failure
        if self._inflight is None:
            # The fetch runs as its own task so that one waiter being cancelled (say, a
            # reconnect abandoned at shutdown) never cancels the fetch the others wait for.
            self._inflight = asyncio.get_running_loop().create_task(self._fetch_once(), name="token-fetch")
            # Its failure is remembered and raised to every later caller: when all waiters were
            # cancelled meanwhile, nobody else retrieves it (asyncio would print it at exit).
            self._inflight.add_done_callback(_retrieved)
        return await asyncio.shield(self._inflight)

    @property
    def next_fetch_in(self) -> float:
        """Seconds until the next fetch may go out: after a failed one, or a token refused soon
        after it was issued (0: at once)."""
        due = max(self._refetch_at, self._retry_at if self._failure is not None else 0.0)
        return max(0.0, due - self._clock.monotonic())

    async def aclose(self) -> None:
        """End a fetch still under way (see the module docstring); the manager is done."""
        task, self._inflight = self._inflight, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _fetch_once(self) -> str:
        try:
            wait = self._refetch_at - self._clock.monotonic()
            if wait > 0:  # the venue refused the last tokens it issued: not another one yet
                await self._clock.sleep(wait)
            token, lifetime = await self._fetch()
        except BrokerBridgeError as exc:
            refused = self._refused_retry is not None and not exc.retryable
            delay = next(self._denied_delays if refused else self._retry_delays)
            if isinstance(exc, AuthenticationError) and not self._accepted:
                delay = max(delay, self._never_accepted_hold_off)
            self._failure, self._retry_at = exc, self._clock.monotonic() + delay
            self._failed.set()
            raise
        finally:
            self._inflight = None
        self._failure = None
        self._retry_delays = self._retry.delays(self._rng)
        self._denied_delays = (self._refused_retry or self._retry).delays(self._rng)
        self._accepted = True
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

    def reject(self, token: str | None) -> int:
        """The venue refused `token`: unless it was replaced already, the next `get()` fetches —
        paced by `refused_retry` from the second refusal in a row (see the module docstring).
        Returns the refusals in a row, 0 when this is no news (`token` was replaced already, or
        its refusal was reported before)."""
        if token is None or self._token is None or self._token.reveal() != token or self._rejected:
            return 0
        self._rejected = True
        if self._refused_retry is None:
            return 1
        assert self._issued_at is not None
        now = self._clock.monotonic()
        if self.refusals == 0 or now - self._issued_at >= REFUSAL_STREAK:  # it served: a new streak
            self.refusals = 0
            self._refused_delays = self._refused_retry.delays(self._rng)
        self.refusals += 1
        if self.refusals >= 2:
            self._refetch_at = now + next(self._refused_delays)
        return self.refusals

    def accepted(self, token: str | None) -> None:
        """The venue accepted `token` (a subscription with it went through): a streak of refusals
        is over, the next refusal is replaced at once again."""
        if token is not None and self._token is not None and self._token.reveal() == token:
            self.refusals = 0

    def refused(self, token: str | None) -> bool:
        """True if the venue refused `token` and no newer one has been issued since."""
        return (
            self._rejected and token is not None and self._token is not None and self._token.reveal() == token
        )

    def _too_old(self) -> bool:
        assert self._issued_at is not None
        return self._clock.monotonic() - self._issued_at >= min(self._refresh_interval, self._lifetime)

    async def run_refresher(self) -> None:
        """Refresh proactively forever, and retry a failed fetch when due (while `needed()`);
        failures are logged, never fatal."""
        while True:
            self._failed.clear()
            now = self._clock.monotonic()
            if self._failure is not None:
                # Retry when due, while a stream needs a token; nobody needing one is looked at
                # again every retry cap (never a busy loop on a failure held in memory).
                wait = self._retry_at - now if self._needed() else max(self._retry_at - now, self._retry.cap)
                if wait > 0:
                    await sleep_unless(self._clock, wait, self._failed)
                    continue
                await self._refresh("Token retry failed")
                continue
            if self._issued_at is None:
                # Nothing private in use yet: no token to keep fresh.
                await sleep_unless(self._clock, self._refresh_interval, self._failed)
                continue
            wait = self._issued_at + self._refresh_interval - now
            if wait > 0:
                await sleep_unless(self._clock, wait, self._failed)
                continue  # re-check: someone may have fetched a fresh one meanwhile (a reconnect)
            await self._refresh("Token refresh failed")

    async def _refresh(self, failed: str) -> None:
        last = self._failure
        try:
            await self.get(fresh=True)
        except BrokerBridgeError as exc:
            # The same refusal again is not news: the first one was logged at WARNING.
            repeated = last is not None and str(last) == str(exc)
            logger.log(logging.DEBUG if repeated else logging.WARNING, "%s: %s: %s", self._venue, failed, exc)
        except Exception:  # a bug must not stop refreshing (nor take the streams down)
            logger.exception("%s: %s unexpectedly (a bug)", self._venue, failed)
            await self._clock.sleep(self._retry.cap)


def _retrieved(task: asyncio.Task[str]) -> None:
    if not task.cancelled():
        task.exception()
