"""`Outage`: Redis unreachable, from the first failed attempt of a loop until one succeeds — the
backoff between attempts, and when an outage starts and ends (said once each, not per attempt).

    outage = Outage(BACKOFF, clock)
    while True:
        try:
            await work()
        except Exception as exc:
            if not is_unreachable(exc):
                raise                      # Redis answered with an error: not an outage
            if outage.begin(exc):          # True on the first failure only
                on_down(outage.reason)
            await outage.wait()
            continue
        if outage.end():                   # True on the first success after failures
            on_up()
"""

from __future__ import annotations

from collections.abc import Iterator

from brokerbridge.core.backoff import BackoffPolicy
from brokerbridge.core.clock import Clock


class Outage:
    def __init__(self, backoff: BackoffPolicy, clock: Clock) -> None:
        self._backoff = backoff
        self._clock = clock
        self._delays: Iterator[float] | None = None
        self.reason: str | None = None  # why Redis is unreachable; None while it answers

    def begin(self, error: BaseException) -> bool:
        """`error` (Redis unreachable) ended an attempt: True if it starts an outage."""
        if self._delays is not None:
            return False
        self._delays = self._backoff.delays()
        self.reason = f"Redis unreachable ({type(error).__name__})"
        return True

    async def wait(self) -> None:
        """The backoff before the next attempt (jittered, capped, on the clock)."""
        if self._delays is None:
            self._delays = self._backoff.delays()
        await self._clock.sleep(next(self._delays))

    def end(self) -> bool:
        """An attempt succeeded: True if it ends an outage (the backoff starts over next time)."""
        if self._delays is None:
            return False
        self._delays = None
        self.reason = None
        return True
