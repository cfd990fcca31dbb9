"""Log lines others can make us write: text quoted and bounded, repeats limited per key.

A client or a venue decides how often some WARNINGs fire (a refused subscription per bogus symbol,
an authentication failure per guessed key) and what text they carry (a symbol, a path). `clip`
makes such text one bounded, escaped piece of a line; `LogLimiter` lets `burst` lines per key
through in each `window` seconds and counts the rest, saying how many on the next line of that
key that is written — one line per event while events are rare, a few lines a minute in a flood.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable

CLIP = 120  # characters of foreign text kept in a log line


def clip(text: object, limit: int = CLIP) -> str:
    """`text` as a quoted Python literal (control characters escaped, so it stays one line), cut
    after `limit` characters of the original with how many more there were."""
    value = str(text)
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… (+{len(value) - limit} characters)"


class _Window:
    __slots__ = ("logged", "start", "suppressed")

    def __init__(self, start: float) -> None:
        self.start = start
        self.logged = 0
        self.suppressed = 0


class LogLimiter:
    """At most `burst` lines per key per `window` seconds of `now` (a monotonic clock); keys are
    forgotten oldest first beyond `max_keys`, so a flood of distinct keys costs bounded memory.
    Lines held back in a window are counted on the key's first line in a later one (not on a
    timer: with no later line the count is not told)."""

    def __init__(
        self,
        logger: logging.Logger,
        now: Callable[[], float],
        *,
        burst: int = 5,
        window: float = 60.0,
        max_keys: int = 1024,
    ) -> None:
        self._logger = logger
        self._now = now
        self.burst = burst
        self.window = window
        self._max_keys = max_keys
        self._windows: OrderedDict[Hashable, _Window] = OrderedDict()

    def log(self, level: int, key: Hashable, message: str, *args: object) -> bool:
        """Log `message % args` at `level` unless `key` had its `burst` this window; True if written."""
        if not self._logger.isEnabledFor(level):
            return False
        now = self._now()
        entry = self._windows.get(key)
        held = 0
        if entry is None or now - entry.start >= self.window:
            held = entry.suppressed if entry is not None else 0
            entry = _Window(now)
            self._windows[key] = entry
            if len(self._windows) > self._max_keys:
                self._windows.popitem(last=False)
        self._windows.move_to_end(key)
        if entry.logged >= self.burst:
            entry.suppressed += 1
            return False
        entry.logged += 1
        if held:
            message += " (%d more like this in the previous %g s were not logged)"
            args = (*args, held, self.window)
        elif entry.logged == self.burst:
            message += " (more like this in the next %g s are counted, not logged)"
            args = (*args, self.window)
        self._logger.log(level, message, *args, stacklevel=2)
        return True
