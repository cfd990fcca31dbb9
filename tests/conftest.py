"""Shared test fixtures: where the captured Kraken wire messages are.

Order: `BROKERBRIDGE_FIXTURES` (a directory holding `kraken/`), then the team's shared copy beside
the repository (`../shared/fixtures`), then the repository's own copy (`tests/fixtures`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


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
