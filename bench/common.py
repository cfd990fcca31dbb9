"""What every benchmark shares: a `Report` of figures, ratios against a baseline and targets, printed
and written as JSON; medians of timed rounds; the captured fixtures."""

from __future__ import annotations

import json
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
        """`ours / baseline` (for throughputs: how many times faster we are)."""
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
