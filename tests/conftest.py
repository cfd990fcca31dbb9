"""Shared test fixtures: where the captured Kraken wire messages are.

Order: `BROKERBRIDGE_FIXTURES` (a directory holding `kraken/`), then the team's shared copy beside
the repository (`../shared/fixtures`), then the repository's own copy (`tests/fixtures`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos import seeds as chaos_seeds


def pytest_configure(config: pytest.Config) -> None:
    # The chaos test's seeds are drawn here, once, before xdist starts its workers (they inherit
    # the environment): the header below and the worker that runs them name the same seeds.
    chaos_seeds.fix_base(os.environ)


def pytest_report_header(config: pytest.Config) -> str:
    return chaos_seeds.describe()


def kraken_fixture_dir() -> Path:
    env = os.environ.get("BROKERBRIDGE_FIXTURES")
    if env:
        return Path(env) / "kraken"
    shared = Path(__file__).parents[1].parent / "shared" / "fixtures" / "kraken"
    if shared.is_dir():
        return shared
    return Path(__file__).parent / "fixtures" / "kraken"


@pytest.fixture(scope="session")
def kraken_dir() -> Path:
    path = kraken_fixture_dir()
    assert path.is_dir(), f"Kraken fixtures not found at {path} (set BROKERBRIDGE_FIXTURES)"
    return path


@pytest.fixture(scope="session", autouse=True)
def _private_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """No test reads or writes the user's ~/.local/state or ~/.cache (journal, session key, caches)."""
    home = tmp_path_factory.mktemp("home")
    patch = pytest.MonkeyPatch()
    patch.setenv("HOME", str(home))
    patch.delenv("XDG_CACHE_HOME", raising=False)
    patch.setenv("XDG_STATE_HOME", str(home / "state"))
    yield home
    patch.undo()


@pytest.fixture(autouse=True)
def _private_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Bridge made in a test journals to that test's own file: seeded simulators reuse fill ids."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


# Directories outside the edit-loop tier (`scripts/test.sh --fast` deselects `slow`): a real browser,
# the chaos run, unmodified third-party clients, the benchmarks' smoke run and the soak.
SLOW_DIRS = ("browser", "chaos", "thirdparty", "bench", "soak")


# The longest files start first (the two workers take files in this order, `--dist loadfile`): a
# minute-long chaos file handed out last would run alone at the end while the other worker idles.
LONGEST_FIRST = ("chaos", "sim_primary", "browser", "thirdparty", "cluster")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).parent

    def top(item: pytest.Item) -> str:
        parts = item.path.relative_to(tests_dir).parts if item.path.is_relative_to(tests_dir) else ()
        return parts[0] if len(parts) > 1 else ""

    for item in items:
        if top(item) in SLOW_DIRS:
            item.add_marker(pytest.mark.slow)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(top(item), len(rank)))  # stable: files stay whole
