"""Reconnect delays: exponential, capped, fully jittered, and reset by the caller after success.

Modelled on `websockets.client.backoff`: an infinite generator the supervisor pulls a delay from
before every attempt. It never gives up: a venue that stays down keeps being retried at `cap`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    initial: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    # First attempts after a random drop go out at once, as Kraken advises; then back off.
    immediate_attempts: int = 1

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        rng = rng or random.Random()
        for _ in range(self.immediate_attempts):
            yield 0.0
        ceiling = self.initial
        while True:
            # "Full jitter": uniform in [ceiling/2, ceiling] keeps a floor so a fleet of clients
            # never hammers the venue in lockstep and never retries in a tight loop.
            yield rng.uniform(ceiling / 2, ceiling)
            ceiling = min(self.cap, ceiling * self.factor)
