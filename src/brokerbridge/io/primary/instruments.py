"""Primary's instrument list, fetched at most once a day and kept on disk.

Primary asks API users to download `instruments/details` about once a day (it is large and it
changes daily: new option series, expiries). The raw response body is cached per environment and
per Buenos Aires trading day; a restart the same day reads the file instead of calling the API.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from brokerbridge.core.clock import Clock
from brokerbridge.core.hours import BUENOS_AIRES

logger = logging.getLogger(__name__)


class InstrumentCache:
    def __init__(self, directory: str | Path, environment: str, clock: Clock) -> None:
        safe_env = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in environment)
        self.directory = Path(os.path.expanduser(str(directory))) / "primary" / safe_env
        self._clock = clock

    def path_for_today(self) -> Path:
        day = dt.datetime.fromtimestamp(self._clock.time(), BUENOS_AIRES).date()
        return self.directory / f"instruments-{day.isoformat()}.json"

    async def load(self, fetch: Callable[[], Awaitable[bytes]]) -> bytes:
        """Today's instrument details: from disk if already fetched today, else from `fetch`."""
        path = self.path_for_today()
        try:
            body = path.read_bytes()
            logger.info("primary: instruments loaded from cache %s", path)
            return body
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("primary: cannot read instrument cache %s (%s); fetching", path, exc)
        body = await fetch()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(body)
            tmp.replace(path)  # atomic: a crash never leaves half a file behind
            for old in self.directory.glob("instruments-*.json"):
                if old != path:
                    old.unlink(missing_ok=True)
        except OSError as exc:
            # A read-only home must not stop trading: work from memory, say so once.
            logger.warning("primary: cannot write instrument cache %s (%s)", path, exc)
        return body
