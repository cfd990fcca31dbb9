"""Run the chaos suite by hand: `python -m tests.chaos.run --seconds 240 --seed 23`, or several seeds
in turn: `--seeds 23,11,5` or `--runs 10` (fresh seeds, printed first).

Prints each run's counts (faults injected, fills, recoveries, worst recovery time, what the
clients received) and every problem, then one line per seed; a failing seed's log (brokerbridge's
INFO log and the summary) and journal are kept in `artifacts/chaos/seed-<seed>/`. Exits 1 if any
seed found a problem. `--log-level INFO` also shows the log on stderr as it happens."""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import tempfile
from pathlib import Path

from tests.chaos.harness import ChaosReport, run_chaos
from tests.chaos.seeds import ARTIFACTS, keep_failed_run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.run", description=__doc__)
    parser.add_argument("--seconds", type=float, default=300.0, help="length of each run (default 300)")
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, default=None, help="seed of every random choice (default 7)")
    seeds.add_argument("--seeds", default=None, help="several seeds, comma-separated, run in turn")
    seeds.add_argument("--runs", type=int, default=None, help="this many fresh random seeds, in turn")
    parser.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep each run's journal and log here (default: a temp dir)",
    )
    parser.add_argument(
        "--artifacts", type=Path, default=ARTIFACTS, help=f"where failed runs are kept (default {ARTIFACTS})"
    )
    args = parser.parse_args(argv)
    if args.seconds < 20:
        parser.error("--seconds must be at least 20 (the last 12 s are the quiet settle period)")
    if args.seeds is not None:
        try:
            chosen = [int(part) for part in args.seeds.split(",") if part.strip()]
        except ValueError:
            parser.error(f"--seeds takes integers separated by commas, got {args.seeds!r}")
    elif args.runs is not None:
        if args.runs < 1:
            parser.error("--runs must be at least 1")
        chosen = [random.SystemRandom().randrange(1, 1_000_000) for _ in range(args.runs)]
    else:
        chosen = [7 if args.seed is None else args.seed]
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(args.log_level)  # the run's own log file takes INFO whatever this says
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=args.log_level, handlers=[handler])
    print(f"chaos: seeds {', '.join(map(str, chosen))}, {args.seconds:.0f} s each", flush=True)
    reports: list[ChaosReport] = []
    for seed in chosen:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = (args.workdir / f"seed-{seed}") if args.workdir else Path(tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            report = asyncio.run(run_chaos(args.seconds, seed, workdir, log=workdir / "chaos.log"))
            print(report.summary(), flush=True)
            if report.problems:
                print(f"  kept in {keep_failed_run(seed, workdir, args.artifacts)}", flush=True)
        reports.append(report)
    print("seeds:")
    for report in reports:
        print(
            f"  {report.seed}: {len(report.problems)} problems, fills {report.fills}, "
            f"{sum(report.faults.values())} faults, {report.recoveries} recoveries"
        )
    return 1 if any(r.problems for r in reports) else 0


if __name__ == "__main__":
    raise SystemExit(main())
