"""Which seeds the chaos test runs, and where a failing seed's log is kept.

CI runs `RUNS` seeds in turn, `SECONDS` each, different ones every run: consecutive seeds from a
base drawn once per pytest session (by `fix_base`, from the root conftest, before xdist starts its
workers, so the header that prints them and the worker that runs them agree). The environment
overrides it:

* `BROKERBRIDGE_CHAOS_SEEDS=23,11` — exactly these seeds, in turn;
* `BROKERBRIDGE_CHAOS_SEED=23` — this one seed (what a failure's message says to reproduce it);
* `BROKERBRIDGE_CHAOS_SEED_BASE=4000` — seeds 4000, 4001, …;
* `BROKERBRIDGE_CHAOS_RUNS=3` — how many seeds from the base;
* `BROKERBRIDGE_CHAOS_SECONDS=30` — the length of each run.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Mapping, MutableMapping
from pathlib import Path

ENV_SEEDS = "BROKERBRIDGE_CHAOS_SEEDS"
ENV_SEED = "BROKERBRIDGE_CHAOS_SEED"
ENV_BASE = "BROKERBRIDGE_CHAOS_SEED_BASE"
ENV_RUNS = "BROKERBRIDGE_CHAOS_RUNS"
ENV_SECONDS = "BROKERBRIDGE_CHAOS_SECONDS"
RUNS = 3
SECONDS = 30.0
MIN_SECONDS = 20.0  # the last 12 s are the quiet settle period
ARTIFACTS = Path(__file__).parents[2] / "artifacts" / "chaos"


class SeedError(ValueError):
    """A chaos setting in the environment is not usable."""


def fix_base(env: MutableMapping[str, str]) -> None:
    """Draw this session's base seed unless the environment names one (or the seeds themselves)."""
    env.setdefault(ENV_BASE, str(random.SystemRandom().randrange(1, 1_000_000)))


def chaos_seeds(env: Mapping[str, str] = os.environ) -> list[int]:
    if env.get(ENV_SEEDS):
        return [_int(ENV_SEEDS, part.strip()) for part in env[ENV_SEEDS].split(",") if part.strip()]
    if env.get(ENV_SEED):
        return [_int(ENV_SEED, env[ENV_SEED])]
    runs = _int(ENV_RUNS, env.get(ENV_RUNS, str(RUNS)))
    if runs < 1:
        raise SeedError(f"{ENV_RUNS} must be at least 1, got {runs}")
    base = env.get(ENV_BASE)
    if base is None:  # not under pytest's conftest (an import by hand): a fresh draw
        base = str(random.SystemRandom().randrange(1, 1_000_000))
    start = _int(ENV_BASE, base)
    return [start + i for i in range(runs)]


def chaos_seconds(env: Mapping[str, str] = os.environ) -> float:
    text = env.get(ENV_SECONDS, str(SECONDS))
    try:
        seconds = float(text)
    except ValueError:
        raise SeedError(f"{ENV_SECONDS} must be a number of seconds, got {text!r}") from None
    if seconds < MIN_SECONDS:
        raise SeedError(f"{ENV_SECONDS} must be at least {MIN_SECONDS:.0f} (12 s of it settle), got {text}")
    return seconds


def describe(env: Mapping[str, str] = os.environ) -> str:
    try:
        seeds, seconds = chaos_seeds(env), chaos_seconds(env)
    except SeedError as exc:
        return f"chaos: {exc}"
    listed = ", ".join(map(str, seeds))
    return f"chaos seeds: {listed} ({seconds:.0f} s each; {ENV_SEED}=<seed> runs one again)"


def keep_failed_run(seed: int, workdir: Path, artifacts: Path = ARTIFACTS) -> Path:
    """Copy a failed run's log and journal to `artifacts/chaos/seed-<seed>/`; return that folder."""
    target = artifacts / f"seed-{seed}"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in ("chaos.log", "journal.sqlite3", "journal.sqlite3-wal"):
        if (workdir / name).exists():
            shutil.copy2(workdir / name, target / name)
    return target


def _int(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise SeedError(f"{name} must be an integer, got {text!r}") from None
