"""The benchmarks keep running: `python -m bench --smoke` (their numbers are printed, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
REPORTS = (
    "hotpath_kraken",
    "hotpath_primary",
    "fanout",
    "memory",
    "recovery",
    "startup",
    "idle_sim",
    "primary_endpoint",
    "options_chain",
    "options_iv",
    "cluster_streams",
)

pytestmark = pytest.mark.timeout(300)


def test_every_benchmark_runs_and_writes_its_report() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    # The benchmark's own words when it fails (a CalledProcessError shows neither stream).
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    out = done.stdout
    for name in REPORTS:
        assert f"== {name}" in out
        report = json.loads((REPO / "bench" / "results" / f"{name}-smoke.json").read_text())
        assert report["smoke"] is True
        assert report["figures"], f"{name} measured nothing"
        assert all(value == value for value in report["figures"].values()), f"{name} has a NaN figure"
    assert "targets missed:" in out


def test_the_idle_serve_benchmark_runs_and_writes_its_report() -> None:
    """`--only idle` is on request only (an hour by default); its smoke run is 10 s of a real `serve`."""
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--only", "idle"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "== idle" in out
    report = json.loads((REPO / "bench" / "results" / "idle-smoke.json").read_text())
    assert report["smoke"] is True and report["figures"]["rss at end MB"] > 0
    assert [t["figure"] for t in report["targets"]] == ["rss growth after warm-up MB"]
