"""BYMA's calendar: the shipped holiday data, business-day counting, the expiry rule."""

from __future__ import annotations

import datetime as dt

import pytest

from brokerbridge.core.errors import ConfigError
from brokerbridge.core.options.calendar import MarketCalendar, byma_calendar, read_holidays

D = dt.date


def test_shipped_file_is_what_the_holidays_package_says_for_byma() -> None:
    holidays = pytest.importorskip("holidays")
    calendar = byma_calendar()
    years = range(2026, calendar.last_year + 1)
    expected = set(holidays.financial_holidays("XBUE", years=years))
    assert set(calendar.names) == expected


def test_known_closures_and_sessions() -> None:
    calendar = byma_calendar()
    assert not calendar.is_business_day(D(2026, 12, 8))  # Inmaculada Concepción
    assert not calendar.is_business_day(D(2026, 12, 31))  # the year-end market holiday
    assert not calendar.is_business_day(D(2026, 11, 9))  # decree day (papal visit)
    assert not calendar.is_business_day(D(2026, 12, 12))  # a Saturday
    assert calendar.is_business_day(D(2026, 12, 7))
    assert calendar.is_business_day(D(2026, 12, 24))  # a half day still trades


@pytest.mark.parametrize(
    ("start", "end", "sessions"),
    [
        (D(2026, 12, 7), D(2026, 12, 7), 0),
        (D(2026, 12, 7), D(2026, 12, 6), 0),
        (D(2026, 12, 4), D(2026, 12, 7), 1),  # Friday → Monday
        (D(2026, 12, 7), D(2026, 12, 18), 8),  # Tue 8th is a holiday: 9 weekdays − 1
        (D(2026, 12, 18), D(2027, 1, 4), 8),  # 25th, 31st and 1st are closed
        (D(2026, 12, 7), D(2027, 2, 19), 48),  # Carnival 8–9 Feb closed too
    ],
)
def test_business_days(start: dt.date, end: dt.date, sessions: int) -> None:
    calendar = byma_calendar()
    assert calendar.business_days(start, end) == sessions
    brute = sum(
        1 for n in range(1, (end - start).days + 1) if calendar.is_business_day(start + dt.timedelta(days=n))
    )
    assert calendar.business_days(start, end) == max(brute, 0)


def test_expiry_on_a_holiday_moves_to_the_business_day_before() -> None:
    calendar = MarketCalendar({D(2027, 3, 26): "Viernes Santo", D(2027, 3, 25): "Jueves Santo"})
    assert calendar.previous_business_day(D(2027, 3, 26)) == D(2027, 3, 24)
    assert calendar.previous_business_day(D(2027, 3, 24)) == D(2027, 3, 24)


def test_coverage_is_known() -> None:
    calendar = byma_calendar()
    assert calendar.covers(D(2027, 6, 1))
    assert not calendar.covers(D(calendar.last_year + 1, 1, 4))


def test_extra_file_adds_closures(tmp_path) -> None:
    extra = tmp_path / "extra.csv"
    extra.write_text("# decreed last week\ndate,name\n2026-12-10,Asueto\n", encoding="utf-8")
    calendar = byma_calendar(str(extra))
    assert not calendar.is_business_day(D(2026, 12, 10))
    assert not calendar.is_business_day(D(2026, 12, 8))  # the shipped ones stay


def test_bad_rows_and_missing_files_are_clear_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"row 3 .*ISO date"):
        read_holidays(["date,name", "2026-12-10,Asueto", "10/12/2026,Asueto"], "extra.csv")
    with pytest.raises(ConfigError, match="cannot be read"):
        byma_calendar(str(tmp_path / "missing.csv"))
