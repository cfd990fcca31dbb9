"""One clock for the whole process, injectable so tests never sleep.

`monotonic()` drives deadlines and backoff, `time()` stamps events (wall clock, seconds since the
epoch), `sleep()` is the only way library code waits; `race()` / `within()` wait for whichever of
several things comes first (a deadline is a race with `sleep()`). `FakeClock` moves only when a test
says so.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import Awaitable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


async def race(*contenders: Awaitable[Any]) -> set[asyncio.Future[Any]]:
    """Run `contenders` until the first of them ends (returns, raises or is cancelled); cancel the
    others and wait until they have stopped. Returns the ones that ended by themselves, to read
    their results or exceptions from. Cancelled itself, it cancels and awaits them all first, so no
    contender outlives the call (a dangling `clock.sleep` would keep a `FakeClock` sleeper alive).

    The one way this codebase waits for "whichever comes first": a timeout is a race with
    `clock.sleep` (`within`), so fake time drives it in tests."""
    futures: list[asyncio.Future[Any]] = [asyncio.ensure_future(contender) for contender in contenders]
    try:
        done, _ = await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in futures:
            future.cancel()  # nothing for those already done
        await asyncio.gather(*futures, return_exceptions=True)
    return done


async def within(clock: Clock, seconds: float, awaitable: Awaitable[T]) -> T:
    """`awaitable`'s result (or its exception), or `TimeoutError` once `seconds` pass on `clock`
    (it is cancelled then). An answer and the deadline at the same turn: the answer wins."""
    work = asyncio.ensure_future(awaitable)
    await race(work, clock.sleep(seconds))
    if work.cancelled():
        raise TimeoutError
    return work.result()


async def sleep_unless(clock: Clock, seconds: float, event: asyncio.Event) -> None:
    """Sleep `seconds` on `clock`, or until `event` is set, whichever comes first."""
    if event.is_set():
        return
    await race(clock.sleep(seconds), event.wait())


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that only moves on `advance()`; sleepers wake in deadline order.

    Wall time moves together with monotonic time, starting at `wall_start`.
    """

    def __init__(self, start: float = 1_000.0, wall_start: float = 1_767_225_600.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now + self._wall_offset

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # A positive sleep ends later than now, if only by one float step: `now + 1e-13` can
        # round to `now`, and a waiter that recomputes such a remainder (a pacer waiting for its
        # slot) then woke at the same instant for ever, `advance` never getting past it.
        deadline = max(self._now + seconds, math.nextafter(self._now, math.inf))
        heapq.heappush(self._sleepers, (deadline, next(self._counter), future))
        await future

    @property
    def sleepers(self) -> int:
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def advance(self, seconds: float, *, settle: int = 20) -> None:
        """Move time forward, waking every sleeper whose deadline passes, in order.

        Between wake-ups the event loop gets `settle` turns so woken tasks can run (and go back to
        sleep) before time moves on.
        """
        target = self._now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            if not future.done():
                future.set_result(None)
            for _ in range(settle):
                await asyncio.sleep(0)
        self._now = target
        for _ in range(settle):
            await asyncio.sleep(0)
