"""BYMA's market calendar: which days trade, and how many business days lie before an expiry.

Holidays are data, not code (issue 20): `byma_holidays.csv` beside this module lists BYMA's full
closures (national holidays with their observance shifts, decree days such as the 2026 papal
visit, the year-end market holiday); `[options] holidays_file` names a file read on top of it, so a
closure decreed at short notice needs no release. QuantLib's `Argentina()` calendar is not used: it
lacks Carnival, 24 March, 2 April and the decree days.

A date beyond the last year the data covers is still counted (weekends only), and `covers()` says
so: the analytics mark a business-day count that relies on it.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from brokerbridge.core.errors import ConfigError

SHIPPED = "byma_holidays.csv"


class MarketCalendar:
    """Weekdays minus the listed closures."""

    __slots__ = ("_holidays", "last_year", "names")

    def __init__(self, holidays: dict[dt.date, str]) -> None:
        self.names = dict(holidays)  # date → why the market is closed
        self._holidays = frozenset(holidays)
        self.last_year = max((d.year for d in holidays), default=0)  # the data's last year

    def is_business_day(self, day: dt.date) -> bool:
        return day.weekday() < 5 and day not in self._holidays

    def covers(self, day: dt.date) -> bool:
        """Whether the holiday data reaches `day`'s year (beyond it, only weekends are known)."""
        return day.year <= self.last_year

    def business_days(self, start: dt.date, end: dt.date) -> int:
        """Business days after `start` up to and including `end` (0 when `end` <= `start`): from a
        Friday to the next Monday is 1; from today to an expiry, the trading sessions left after
        today's."""
        if end <= start:
            return 0
        days = (end - start).days
        weeks, rest = divmod(days, 7)
        count = weeks * 5
        weekday = start.weekday()
        for offset in range(1, rest + 1):
            if (weekday + offset) % 7 < 5:
                count += 1
        count -= sum(1 for d in self._holidays if start < d <= end and d.weekday() < 5)
        return count

    def previous_business_day(self, day: dt.date) -> dt.date:
        """`day` itself if it trades, else the closest business day before it (BYMA's rule for an
        equity option's expiry that falls on a holiday)."""
        while not self.is_business_day(day):
            day -= dt.timedelta(days=1)
        return day


def read_holidays(lines: Iterable[str], where: str) -> dict[dt.date, str]:
    """`date,name` rows (ISO dates; `#` lines are comments) → {date: name}; a bad row is a
    ConfigError naming the file and line."""
    found: dict[dt.date, str] = {}
    rows = csv.reader(line for line in lines if line.strip() and not line.lstrip().startswith("#"))
    for number, row in enumerate(rows, start=1):
        if number == 1 and row and row[0].strip().lower() == "date":
            continue  # the header
        try:
            day = dt.date.fromisoformat(row[0].strip())
        except (IndexError, ValueError):
            raise ConfigError(
                f"{where}: row {number} ({','.join(row)!r}) does not start with an ISO date",
                remedy="each row is date,name — e.g. 2026-12-08,Inmaculada Concepción",
            ) from None
        found[day] = row[1].strip() if len(row) > 1 else ""
    return found


def byma_calendar(extra_file: str | None = None) -> MarketCalendar:
    """The shipped BYMA closures, plus those of `extra_file` (`[options] holidays_file`)."""
    shipped = resources.files(__package__).joinpath(SHIPPED).read_text(encoding="utf-8")
    holidays = read_holidays(shipped.splitlines(), SHIPPED)
    if extra_file:
        path = Path(extra_file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"options.holidays_file {str(path)!r} cannot be read: {exc.strerror or exc}",
                remedy="point it at a CSV of date,name rows, or remove the setting",
            ) from None
        holidays.update(read_holidays(text.splitlines(), str(path)))
    return MarketCalendar(holidays)
