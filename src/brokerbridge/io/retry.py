"""`Retrying`: the wait between attempts of work that must get done, such as a reconciliation read.

Both connectors read back from REST what their streams may have missed, and both keep at it until
a read succeeds: given up after a failure, what happened while away (a fill, a cancel) is never
reported. The delays are the venue's backoff (jittered, capped, never ending); an error no retry can
mend (not `retryable`) ends the work instead, logged at ERROR.
"""

from __future__ import annotations

import logging
import random

from brokerbridge.core.backoff import BackoffPolicy
from brokerbridge.core.clock import Clock
from brokerbridge.core.errors import BrokerBridgeError


class Retrying:
    """One run of the work: create it when the work starts, call `after_failure` after each failed
    attempt. `what` names the work in the log lines ("kraken: reconciliation with REST"), `log` is
    the caller's logger (the lines belong to the connector)."""

    def __init__(
        self,
        backoff: BackoffPolicy,
        *,
        clock: Clock,
        rng: random.Random | None,
        what: str,
        log: logging.Logger,
    ) -> None:
        self._delays = backoff.delays(rng)
        next(self._delays)  # the immediate attempt is the first one, not a retry
        self._clock = clock
        self._what = what
        self._log = log

    async def after_failure(self, error: BrokerBridgeError) -> bool:
        """`error` ended an attempt: False if no retry can succeed (not retryable), else True once
        the next backoff delay has passed."""
        if not error.retryable:
            self._log.error("%s failed for good: %s", self._what, error)
            return False
        delay = next(self._delays)
        self._log.warning("%s failed (%s); retrying in %.1fs", self._what, error, delay)
        await self._clock.sleep(delay)
        return True
