"""Instruments are fetched once per Buenos Aires day and read back from disk."""

from __future__ import annotations

from pathlib import Path

from brokerbridge.core.clock import FakeClock
from brokerbridge.io.primary.instruments import InstrumentCache


async def test_fetched_once_per_day_and_old_days_removed(tmp_path: Path) -> None:
    clock = FakeClock(wall_start=1_795_000_000.0)  # 2026-11-18 (a Wednesday), 07:26 in Buenos Aires
    calls: list[int] = []

    async def fetch() -> bytes:
        calls.append(1)
        return b'{"status":"OK","instruments":[%d]}' % len(calls)

    cache = InstrumentCache(tmp_path, "remarkets", clock)
    assert await cache.load(fetch) == b'{"status":"OK","instruments":[1]}'
    assert (
        await InstrumentCache(tmp_path, "remarkets", clock).load(fetch)
        == b'{"status":"OK","instruments":[1]}'
    )
    assert len(calls) == 1  # a restart the same day reads the file
    await clock.advance(24 * 3600)
    assert await cache.load(fetch) == b'{"status":"OK","instruments":[2]}'
    files = sorted(p.name for p in (tmp_path / "primary" / "remarkets").iterdir())
    assert files == ["instruments-2026-11-19.json"]


async def test_an_unwritable_cache_still_returns_the_instruments(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")

    async def fetch() -> bytes:
        return b"{}"

    assert await InstrumentCache(blocker, "live", FakeClock()).load(fetch) == b"{}"
