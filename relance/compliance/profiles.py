"""Jurisdiction profiles: when a debtor may be contacted, and how often by phone.

FR: weekdays 10:00-13:00 and 14:00-20:00 in the debtor's time zone, never on Sundays or public
holidays (the debtor's region's: Alsace-Moselle and the overseas departments have more). US (FDCPA / Regulation F): 08:00-21:00 local time, at most 7 call attempts in 7 days and
no call within 7 days after a telephone conversation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, time
from functools import lru_cache

import holidays


@dataclass(frozen=True)
class JurisdictionProfile:
    code: str
    windows: tuple[tuple[time, time], ...]
    allowed_weekdays: frozenset[int]  # 0 = Monday
    holiday_country: str | None  # public holidays from the `holidays` package; None: ignored
    max_calls: int | None = None  # call attempts ...
    call_window_days: int = 7  # ... in this many days
    quiet_days_after_conversation: int | None = None  # no call this long after a phone talk

    def is_holiday(self, day: date, subdiv: str | None = None) -> str | None:
        """The holiday's name, or None. `subdiv` adds a region's own days (Alsace-Moselle:
        Good Friday and 26 December), see `relance.compliance.location`."""
        if self.holiday_country is None:
            return None
        return _holiday_calendar(self.holiday_country, subdiv, day.year).get(day)


@lru_cache(maxsize=64)
def _holiday_calendar(country: str, subdiv: str | None, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=subdiv, years=year)


FR = JurisdictionProfile(
    code="FR",
    windows=((time(10, 0), time(13, 0)), (time(14, 0), time(20, 0))),
    allowed_weekdays=frozenset({0, 1, 2, 3, 4}),
    holiday_country="FR",
)

US = JurisdictionProfile(
    code="US",
    windows=((time(8, 0), time(21, 0)),),
    allowed_weekdays=frozenset(range(7)),
    holiday_country=None,
    max_calls=7,
    call_window_days=7,
    quiet_days_after_conversation=7,
)

PROFILES: dict[str, JurisdictionProfile] = {"FR": FR, "US": US}


def profile_for(jurisdiction: str | None) -> JurisdictionProfile:
    """Unknown jurisdictions get the French profile (the stricter windows)."""
    return PROFILES.get((jurisdiction or "FR").upper(), FR)


def whole_hours(profile: JurisdictionProfile) -> list[int]:
    """Local hours wholly inside one of the profile's contact windows (10 for 10:00-13:00, not
    13): where the planner may put a contact (best time, send-hour experiments)."""
    return [
        h
        for h in range(24)
        if any(start <= time(h) and time(h, 59) < end for start, end in profile.windows)
    ]


def narrowed(
    profile: JurisdictionProfile, contact_from: time | None, contact_until: time | None
) -> JurisdictionProfile | None:
    """The profile whose windows are the law's cut to the debtor's chosen hours (portal
    preferences), or None when the two do not overlap. No hours chosen: the profile itself."""
    if contact_from is None or contact_until is None:
        return profile
    windows = tuple(
        (max(start, contact_from), min(end, contact_until))
        for start, end in profile.windows
        if max(start, contact_from) < min(end, contact_until)
    )
    if not windows:
        return None
    return replace(profile, code=f"{profile.code} within the debtor's hours", windows=windows)


def contact_profile(
    jurisdiction: str | None, contact_from: time | None, contact_until: time | None
) -> JurisdictionProfile:
    """The windows a reminder must fall in: the law's, narrowed to the debtor's hours.

    `relance.contacts.service.set_preferences` refuses hours outside the law's windows, so the
    narrowing is empty only if the jurisdiction changed since; the law's windows then apply
    alone (they are the binding rule; the debtor's hours were a wish they no longer meet).
    """
    legal = profile_for(jurisdiction)
    return narrowed(legal, contact_from, contact_until) or legal
