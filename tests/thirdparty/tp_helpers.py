"""Bounded waiting helpers shared by the third-party fidelity tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


# ---- small waiting helpers (real time, bounded) ----------------------------------------------
def wait_until(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


async def async_wait_until(pred: Callable[[], Any], limit_s: float, what: str, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + limit_s
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit_s}s waiting for {what}")
        await asyncio.sleep(interval)


async def bounded(aw: Awaitable[Any], limit_s: float, what: str) -> Any:
    try:
        return await asyncio.wait_for(aw, limit_s)
    except TimeoutError as exc:
        raise AssertionError(f"timed out after {limit_s}s: {what}") from exc


class CallCounter:
    """Client-side pacing for Kraken's private REST call counter (what a well-behaved client does).

    Kraken (and the simulator) refuse private calls with ``EAPI:Rate limit exceeded`` once the
    per-key counter would pass its tier maximum; it decays continuously. We mirror the counter
    conservatively (Intermediate tier: max 20, −0.5/s; TradesHistory/Ledgers cost 2) and sleep
    before a call that would overflow it, instead of absorbing errors with retries.
    """

    def __init__(self, maximum: float = 20.0, decay_per_s: float = 0.5, margin: float = 2.0) -> None:
        self.maximum = maximum - margin
        self.decay = decay_per_s
        self.level = 0.0
        self.at = time.monotonic()

    def spend(self, cost: float = 1.0) -> None:
        now = time.monotonic()
        self.level = max(0.0, self.level - (now - self.at) * self.decay)
        self.at = now
        excess = self.level + cost - self.maximum
        if excess > 0:
            time.sleep(excess / self.decay)
            self.level -= excess
            self.at = time.monotonic()
        self.level += cost


class Paced:
    """Calls ``counter.spend(cost)`` before the named methods of a client; everything else passes through."""

    def __init__(self, client: Any, counter: CallCounter, costs: dict[str, float]) -> None:
        self._client = client
        self._counter = counter
        self._costs = costs

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        cost = self._costs.get(name)
        if cost is None or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self._counter.spend(cost)
            return attr(*args, **kwargs)

        return call
