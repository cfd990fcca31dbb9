"""The bridge SIGKILLed and restarted mid-order (tests/chaos/restart.py): `serve` a child process,
killed every 3–7 s of running while clients keep placing and cancelling over REST and `/ws`.

One seed per run, from the chaos seeds (`tests/chaos/seeds.py`: `BROKERBRIDGE_CHAOS_SEED=<seed>`
runs one again), at least 60 s of trading (`BROKERBRIDGE_CHAOS_SECONDS` if longer). By hand:
`python -m tests.chaos.restart --seconds 120 --seed <seed>`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.chaos.restart import DECIDE_WINDOW, START_LIMIT, RestartReport, run_restart
from tests.chaos.seeds import ARTIFACTS, ENV_SEED, chaos_seconds, chaos_seeds

SEED = chaos_seeds()[0]
SECONDS = max(chaos_seconds(), 60.0)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(SECONDS + DECIDE_WINDOW + 2 * START_LIMIT)]


async def test_no_duplicate_no_lost_fill_no_undecided_order_across_sigkill_and_restart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = await run_restart(SECONDS, SEED, tmp_path)
    with capsys.disabled():
        print("\n" + report.summary())
    problems = report.problems + _not_a_real_run(report)
    if problems:
        kept = ARTIFACTS / f"restart-{SEED}"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(tmp_path, kept, ignore=shutil.ignore_patterns("cache", "state"))
        pytest.fail(
            f"restart chaos seed {SEED} ({SECONDS:.0f} s) failed; serve.log and journal kept in {kept}; "
            f"again with {ENV_SEED}={SEED} pytest tests/chaos/test_restart.py\n" + report.summary(),
            pytrace=False,
        )


def _not_a_real_run(report: RestartReport) -> list[str]:
    """Kills came, some with orders in flight; orders were retried and answered as duplicates."""
    c = report.counts
    out = []
    if report.kills < SECONDS / 15:
        out.append(f"only {report.kills} kills")
    if not report.kills_in_flight:
        out.append("no kill came while an order was in flight")
    if not (c["orders kraken"] and c["orders primary"]):
        out.append("orders on one venue only")
    if not (c["retries"] and c["duplicate acks"]):
        out.append("no order was retried and answered as a duplicate")
    return out
