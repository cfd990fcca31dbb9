"""The chaos suite, CI length: both simulators, the server, real clients, random seeded faults.

The long run is by hand: `python -m tests.chaos.run --seconds 300 --seed 7` (docs/reliability.md).
`BROKERBRIDGE_CHAOS_SECONDS` / `BROKERBRIDGE_CHAOS_SEED` change this test's run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.chaos.harness import run_chaos

SECONDS = float(os.environ.get("BROKERBRIDGE_CHAOS_SECONDS", "60"))
SEED = int(os.environ.get("BROKERBRIDGE_CHAOS_SEED", "7"))

pytestmark = pytest.mark.timeout(SECONDS + 90)


async def test_no_fill_lost_no_book_wrong_no_crash_under_random_faults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = await run_chaos(SECONDS, SEED, tmp_path)
    with capsys.disabled():
        print("\n" + report.summary())
    # The run must have been a real one: faults fired, orders traded, streams went down and came back.
    assert sum(report.faults.values()) >= SECONDS / 5
    assert report.fills["kraken"] > 0 and report.fills["primary"] > 0
    assert report.recoveries > 0 and report.book_checks > 0 and report.balance_checks > 0
    assert report.problems == []
