"""What every benchmark shares: a `Report` of figures, ratios against a baseline and targets, printed
and written as JSON; medians of timed rounds; the captured fixtures."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FIXTURES = Path(os.environ.get("BROKERBRIDGE_FIXTURES", REPO / "tests" / "fixtures"))
RESULTS = HERE / "results"  # git-ignored
SEED = 7


@dataclass
class Target:
    """`figure` compared with `limit`: at least (`>=`) or at most (`<=`)."""

    figure: str
    op: str
    limit: float

    def met(self, figures: dict[str, float]) -> bool | None:
        value = figures.get(self.figure)
        if value is None:
            return None
        return value >= self.limit if self.op == ">=" else value <= self.limit


@dataclass
class Report:
    name: str
    figures: dict[str, float] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, figure: str, value: float, unit: str = "") -> float:
        self.figures[figure] = value
        self.units[figure] = unit
        return value

    def ratio(self, figure: str, ours: str, baseline: str) -> float:
        """`ours / baseline` (for throughputs: how many times faster we are). A baseline that measured
        nothing (a smoke run too short for one delivery on a loaded machine) gives no ratio, and a
        note says so, rather than a crash or an infinite figure."""
        if self.figures[baseline] == 0:
            self.note(f"{figure}: not computed, {baseline} measured 0")
            return math.nan
        return self.add(figure, self.figures[ours] / self.figures[baseline], "x")

    def target(self, figure: str, op: str, limit: float) -> None:
        self.targets.append(Target(figure, op, limit))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def print(self) -> None:
        print(f"\n== {self.name}")
        width = max((len(name) for name in self.figures), default=0)
        for name, value in self.figures.items():
            unit = self.units.get(name, "")
            shown = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.3g}"
            print(f"  {name:<{width}}  {shown:>12} {unit}")
        for target in self.targets:
            met = target.met(self.figures)
            mark = "n/a" if met is None else ("met" if met else "MISSED")
            print(f"  target {target.figure} {target.op} {target.limit:g}: {mark}")
        for text in self.notes:
            print(f"  note: {text}")

    def write(self, smoke: bool) -> Path:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{self.name}{'-smoke' if smoke else ''}.json"
        body = {
            **asdict(self),
            "targets": [{**asdict(t), "met": t.met(self.figures)} for t in self.targets],
            "smoke": smoke,
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "python": sys.version.split()[0],
            "machine": f"{platform.machine()} x{os.cpu_count()}",
        }
        path.write_text(json.dumps(body, indent=2) + "\n")
        return path


def median_seconds(run: Callable[[], float], rounds: int) -> float:
    """Median of `rounds` calls of `run`, which returns the seconds its timed part took."""
    return statistics.median(run() for _ in range(rounds))


def percentile(values: Sequence[float], q: float) -> float:
    """The `q` quantile (0–1) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


def add_rss_growth(
    report: Report, samples: Sequence[tuple[float, float]], warm_up_s: float, limit: float
) -> None:
    """RSS figures of a long run from (seconds, MB) samples: the RSS at the end of the warm-up is the
    baseline; growth from there to the end (target: at most `limit` MB), its least-squares slope."""
    steady = [(t, rss) for t, rss in samples if t >= warm_up_s] or list(samples[-1:])
    baseline = steady[0][1]
    report.add("rss after warm-up MB", baseline, "MB")
    report.add("rss at end MB", samples[-1][1], "MB")
    report.add("rss growth after warm-up MB", samples[-1][1] - baseline, "MB")
    report.add("rss slope after warm-up MB per minute", slope(steady) * 60, "MB/min")
    report.add("rss max MB", max(rss for _, rss in samples), "MB")
    report.target("rss growth after warm-up MB", "<=", limit)
