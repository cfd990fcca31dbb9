"""When the server writes to its WebSocket clients: together, after a window that grows with the load.

A connection with something new asks to be flushed (`Coalescer.mark`); one timer for the whole
server then flushes every marked connection — each writes all it has in one write. The window
before the next flush is as long as flushes take (a moving average, at most `max_window`): when
writing is cheap (flushes under `MIN_TIMER`: up to a hundred or so clients) there is no wait at
all — the flush runs on the loop's next turn, after whatever this turn queued — and under load each
connection's frames pile up for longer, so each write carries more of them: writing takes about
half the loop's time at most, and whatever the load, a message waits at most about `max_window` +
one flush before it is written. The average keeps one slow flush (the machine busy elsewhere)
from delaying the next one.

A write costs ≈ 4–5 µs here (mostly the `send` syscall) whatever it carries; framing one more
message into it ≈ 0.3 µs: batching is what lets one core feed a thousand clients (issue 8).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

logger = logging.getLogger(__name__)

# Below this the wait is not worth a timer: the loop's poll sleeps whole milliseconds (epoll), so a
# short timer costs a millisecond or two. Cheap flushes go out on the loop's next turn instead —
# still after everything the current turn queues, which is then written together.
MIN_TIMER = 0.002
SMOOTHING = 0.2  # weight of the newest flush in the average cost


class Flushable(Protocol):
    def flush(self) -> None: ...


class Coalescer:
    def __init__(self, max_window: float = 0.005) -> None:
        self.max_window = max_window
        self._dirty: dict[Any, object] = {}  # insertion-ordered: flushed in the order they asked
        self._timer: asyncio.Handle | None = None
        self._window = 0.0
        self._cost = 0.0  # the average flush's wall time
        self.flushes = 0

    def mark(self, conn: Flushable) -> None:
        self._dirty[conn] = None
        if self._timer is None:
            self._schedule()

    def mark_all(self, conns: Mapping[Any, object]) -> None:
        """Mark every key of `conns` (one C-level update: a hub marks all its clients per event)."""
        self._dirty.update(conns)
        if self._timer is None:
            self._schedule()

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        if self._window < MIN_TIMER:
            self._timer = loop.call_soon(self._flush)
        else:
            self._timer = loop.call_later(self._window, self._flush)

    def discard(self, conn: Flushable) -> None:
        self._dirty.pop(conn, None)

    def _flush(self) -> None:
        self._timer = None
        dirty, self._dirty = self._dirty, {}
        start = time.perf_counter()  # a cost, not a deadline: wall time is what the window spends
        for conn in dirty:
            try:
                conn.flush()
            except Exception:  # our bug, in one connection: the others are still written
                logger.exception("flushing a WebSocket connection failed")
        self.flushes += 1
        self._cost += SMOOTHING * (time.perf_counter() - start - self._cost)
        self._window = min(self.max_window, self._cost)
