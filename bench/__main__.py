"""Run the benchmarks: `python -m bench [--smoke] [--only NAME ...]` from the repository root.

Each prints its figures, its ratios against a baseline measured in the same run and whether each
target is met, and writes `bench/results/<name>.json` (git-ignored). `--smoke` runs each briefly
to prove it still works (CI); its numbers mean nothing (cluster_nodes only with `--smoke --only
cluster_nodes`: three `serve` processes start first, 11–30 s in all here). The full set takes a few minutes;
`--only soak [--minutes 10]` is the long run at full load (memory growth) and `--only idle
[--minutes 60]` an idle `serve`'s memory over an hour, both on request only.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time

BENCHES = (
    "hotpath",
    "fanout",
    "recovery",
    "startup",
    "idle_sim",
    "orders",
    "primary_endpoint",
    "options_iv",
    "options_chain",
    "cluster_streams",
    "cluster_nodes",
)
LONG = ("soak", "idle")  # only when asked for by name: the default set stays under ten minutes
# Left out of a plain `--smoke` (CI's smoke test), run by `--smoke --only NAME`: three `serve`
# processes, a simulator and Redis start before anything is measured — 11–16 s on this box at a
# quiet moment, 20–30 s under load: too long for CI's budget (tests/bench/test_event_pairing.py
# covers how it pairs events).
NOT_IN_SMOKE = ("cluster_nodes",)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a few seconds each; numbers not meaningful")
    parser.add_argument(
        "--only",
        action="append",
        choices=BENCHES + LONG,
        help="run only these (repeatable); soak and idle only so",
    )
    parser.add_argument(
        "--minutes", type=float, default=None, help="how long soak (default 10) or idle (default 60) runs"
    )
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress, even when piped
    # The library logs reconnects as WARNINGs; the recovery benchmark causes them on purpose.
    logging.basicConfig(level=logging.ERROR)
    missed = []
    names = args.only or [name for name in BENCHES if not (args.smoke and name in NOT_IN_SMOKE)]
    for name in names:
        started = time.monotonic()
        module = importlib.import_module(f"bench.{name}")
        reports = module.run(args.smoke, args.minutes) if name in LONG else module.run(args.smoke)
        for report in reports:
            report.print()
            path = report.write(args.smoke)
            missed += [f"{report.name}: {t.figure}" for t in report.targets if t.met(report.figures) is False]
            print(f"  → {path.relative_to(path.parents[2])}")
        print(f"  ({name}: {time.monotonic() - started:.0f} s)")
    if args.smoke and not args.only:
        print("\nnot in the smoke set (run with --smoke --only NAME): " + ", ".join(NOT_IN_SMOKE))
    print(f"\ntargets missed: {len(missed)}" + "".join(f"\n  {m}" for m in missed))


if __name__ == "__main__":
    main()
