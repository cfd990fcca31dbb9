"""Market hours in Buenos Aires time."""

from __future__ import annotations

import datetime as dt

import pytest

from brokerbridge.core.errors import ConfigError
from brokerbridge.core.hours import BUENOS_AIRES, market_hours


def at(day: int, hour: int, minute: int) -> float:
    # 2026-11-16 is a Monday.
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=BUENOS_AIRES).timestamp()


def test_weekday_hours_in_buenos_aires_time() -> None:
    is_open = market_hours("10:30-17:15")
    assert not is_open(at(16, 10, 29))
    assert is_open(at(16, 10, 30))
    assert is_open(at(20, 17, 14))  # Friday
    assert not is_open(at(20, 17, 15))
    assert not is_open(at(21, 12, 0))  # Saturday


def test_always_and_bad_specs() -> None:
    assert market_hours("always")(0.0)
    with pytest.raises(ConfigError, match="HH:MM-HH:MM"):
        market_hours("ten to five")
    with pytest.raises(ConfigError, match="ends before it starts"):
        market_hours("17:00-10:00")
