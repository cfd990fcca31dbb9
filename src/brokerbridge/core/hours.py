"""Trading hours as a predicate on wall time: "HH:MM-HH:MM" in a fixed UTC offset, or "always".

Argentina has no daylight saving time, so Buenos Aires is UTC−3 all year; a fixed offset is exact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from brokerbridge.core.errors import ConfigError

BUENOS_AIRES = dt.timezone(dt.timedelta(hours=-3), "ART")
_WEEKDAYS = range(0, 5)  # Monday..Friday


def market_hours(spec: str, tz: dt.tzinfo = BUENOS_AIRES) -> Callable[[float], bool]:
    """`"10:00-17:15"` → is_open(epoch_seconds) for weekdays in `tz`; `"always"` → always open."""
    text = spec.strip().lower()
    if text == "always":
        return lambda _now: True
    try:
        start_text, end_text = text.split("-")
        start = dt.time.fromisoformat(start_text.strip())
        end = dt.time.fromisoformat(end_text.strip())
    except ValueError:
        raise ConfigError(
            f"market_hours {spec!r} is not HH:MM-HH:MM or 'always'",
            remedy='e.g. market_hours = "10:00-17:15"',
        ) from None
    if start >= end:
        raise ConfigError(f"market_hours {spec!r} ends before it starts")

    def is_open(now: float) -> bool:
        local = dt.datetime.fromtimestamp(now, tz)
        return local.weekday() in _WEEKDAYS and start <= local.time() < end

    return is_open
