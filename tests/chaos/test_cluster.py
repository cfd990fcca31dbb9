"""The cluster under chaos (tests/chaos/cluster.py): two holder nodes and an edge, each a
`serve --cluster` child process on a real redis-server, the holder SIGKILLed and SIGSTOPped and Redis
restarted while clients on the edge trade and stream.

One seed per run, from the chaos seeds (`BROKERBRIDGE_CHAOS_SEED=<seed>` runs one again), 40 s of
trading (`BROKERBRIDGE_CHAOS_SECONDS` if longer). By hand:
`python -m tests.chaos.cluster --seconds 120 --seed <seed>`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.chaos.cluster import ClusterReport, run_cluster
from tests.chaos.restart import DECIDE_WINDOW, START_LIMIT
from tests.chaos.seeds import ARTIFACTS, ENV_SEED, chaos_seconds, chaos_seeds

SEED = chaos_seeds()[0]
SECONDS = max(chaos_seconds(), 40.0)  # every kind of fault comes in the first three (5–8 s apart)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(SECONDS + DECIDE_WINDOW + 4 * START_LIMIT)]


async def test_failover_loses_no_fill_duplicates_no_order_and_never_splits_the_brain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = await run_cluster(SECONDS, SEED, tmp_path)
    with capsys.disabled():
        print("\n" + report.summary())
    problems = report.problems + _not_a_real_run(report)
    if problems:
        kept = ARTIFACTS / f"cluster-{SEED}"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(tmp_path, kept, ignore=shutil.ignore_patterns("cache", "state", "redis"))
        pytest.fail(
            f"cluster chaos seed {SEED} ({SECONDS:.0f} s) failed; the nodes' logs kept in {kept}; "
            f"again with {ENV_SEED}={SEED} pytest tests/chaos/test_cluster.py\n" + report.summary(),
            pytrace=False,
        )


def _not_a_real_run(report: ClusterReport) -> list[str]:
    """Every kind of fault came, holders were taken over, orders flowed on both venues."""
    out = []
    for kind in ("kill", "stop", "redis restart"):
        if not report.faults[kind]:
            out.append(f"no {kind}")
    if len(report.takeovers) < 2:
        out.append(f"only {len(report.takeovers)} takeovers")
    if report.counts["orders"] < 20 or not report.counts["accepted"]:
        out.append(f"only {report.counts['orders']} orders, {report.counts['accepted']} accepted")
    if not report.counts["client fills"]:
        out.append("no fill reached the client")
    return out
