"""Run the chaos suite by hand: `python -m tests.chaos.run --seconds 300 --seed 7`.

Prints the counts (faults injected, fills, recoveries, worst recovery time) and every problem;
exits 1 if the run found any. `--log-level INFO` shows what the bridge did meanwhile."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path

from tests.chaos.harness import main_report, run_chaos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.run", description=__doc__)
    parser.add_argument("--seconds", type=float, default=300.0, help="length of the run (default 300)")
    parser.add_argument("--seed", type=int, default=7, help="seed of every random choice (default 7)")
    parser.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep the journal here (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    if args.seconds < 20:
        parser.error("--seconds must be at least 20 (the last 12 s are the quiet settle period)")
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        report = asyncio.run(run_chaos(args.seconds, args.seed, workdir))
    return main_report(report)


if __name__ == "__main__":
    raise SystemExit(main())
