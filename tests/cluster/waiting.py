"""`until`: the cluster tests' one way to wait — on a condition, with a bound, never for "long
enough". Redis runs on real time (its TTLs, a restart); the nodes' own timers run on a FakeClock
that `until` moves along while it polls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from brokerbridge.core.clock import FakeClock

WAIT_S = 10.0  # the bound of every poll: a broken component fails its test, never hangs it


async def until(
    condition: Callable[[], bool | Awaitable[bool]], clock: FakeClock | None = None, *, step: float = 0.5
) -> None:
    """Poll `condition` (a function, or a coroutine function: a Redis query); when `clock` is
    given, move it `step` seconds per poll (backoffs, keep-alives and intervals then come due).
    Fail after WAIT_S of real time."""
    deadline = time.monotonic() + WAIT_S
    while not await _holds(condition):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {WAIT_S} s")
        if clock is not None:
            await clock.advance(step)
        await asyncio.sleep(0.01)


async def _holds(condition: Callable[[], bool | Awaitable[bool]]) -> bool:
    result = condition()
    return bool(await result) if isinstance(result, Awaitable) else result
