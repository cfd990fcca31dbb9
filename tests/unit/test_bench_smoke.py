"""The benchmarks keep running (their numbers are printed, never asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench"


def test_book_benchmark_runs_and_prints_a_ratio() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / "bench_kraken_book.py"), "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "ratio session/baseline time:" in out
