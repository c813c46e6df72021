"""Collector opening hours ("mon-fri 09:00-18:00"), in the creditor's time zone, holidays closed.

Used to choose between a live transfer (<Dial>) and a callback task when the bot hands off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_SPEC = re.compile(r"^\s*([a-z,\-]+)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
HOLIDAY_COUNTRY = "FR"


@dataclass(frozen=True)
class OpeningHours:
    days: frozenset[int]  # Monday = 0
    start: time
    end: time
    timezone: str

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(ZoneInfo(self.timezone))
        return (
            local.weekday() in self.days
            and local.date() not in _holidays(local.year)
            and self.start <= local.time() < self.end
        )

    def next_opening(self, at: datetime) -> datetime:
        """When a collector can call back: now if open, else the next opening (UTC)."""
        if self.is_open(at):
            return at
        zone = ZoneInfo(self.timezone)
        local = at.astimezone(zone)
        for offset in range(0, 15):
            day = local.date() + timedelta(days=offset)
            opening = datetime.combine(day, self.start, tzinfo=zone)
            if opening > local and day.weekday() in self.days and day not in _holidays(day.year):
                return opening.astimezone(at.tzinfo)
        return at + timedelta(days=1)


def parse_hours(spec: str, timezone: str) -> OpeningHours:
    """'mon-fri 09:00-18:00' or 'mon,wed,fri 10:00-12:30'. Raises ValueError on anything else."""
    found = _SPEC.match(spec.lower())
    if not found:
        raise ValueError(f"opening hours must look like 'mon-fri 09:00-18:00', got {spec!r}")
    day_part, h1, m1, h2, m2 = found.groups()
    days: set[int] = set()
    for chunk in day_part.split(","):
        if "-" in chunk:
            first, last = (DAYS.index(d) for d in chunk.split("-", 1))
            days.update(range(first, last + 1))
        else:
            days.add(DAYS.index(chunk))
    start, end = time(int(h1), int(m1)), time(int(h2), int(m2))
    if end <= start:
        raise ValueError("opening hours end before they start")
    return OpeningHours(frozenset(days), start, end, timezone)


@lru_cache(maxsize=8)
def _holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(HOLIDAY_COUNTRY, years=year)
