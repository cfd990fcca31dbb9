"""Shared test fixtures: where the captured wire messages live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(os.environ.get("BROKERBRIDGE_FIXTURES", Path(__file__).parent / "fixtures"))


@pytest.fixture(scope="session")
def kraken_fixtures() -> Path:
    return FIXTURES / "kraken"
