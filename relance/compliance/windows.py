"""Contact windows in the debtor's local time: is now allowed, and if not, when next.

A debtor may have several plausible zones (`relance.compliance.location.Place`): an instant is
inside the window only if it is inside it in every one of them, and a day is closed if it is
closed (Sunday, holiday) in any of them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from relance.compliance.location import Place
from relance.compliance.profiles import JurisdictionProfile
from relance.settings import get_settings

SEARCH_DAYS = 21
_MAX_ROUNDS = 200  # alternating between zones converges in a few rounds when windows overlap


def zone(name: str | None) -> ZoneInfo:
    """The debtor's zone, or DEFAULT_TIMEZONE for a debtor without one.

    No fallback for an unknown name: every input checks it (api schemas, CSV rows, settings), so
    one here is corrupt data, and a guessed zone could contact the debtor at hours the law forbids.
    """
    return ZoneInfo(name or get_settings().default_timezone)


def _place(where: Place | str | None) -> Place:
    return where if isinstance(where, Place) else Place.single(where)


def day_block(
    profile: JurisdictionProfile, day: date, subdiv: str | None = None
) -> tuple[str, str] | None:
    """Why a whole local day is closed (code, explanation), or None if contacts are allowed."""
    if day.weekday() == 6 and 6 not in profile.allowed_weekdays:
        return "sunday", f"{day.isoformat()} is a Sunday"
    holiday = profile.is_holiday(day, subdiv)
    if holiday:
        return "public_holiday", f"{day.isoformat()} is a public holiday ({holiday})"
    if day.weekday() not in profile.allowed_weekdays:
        return "closed_day", f"{day.strftime('%A')} is not a contact day in {profile.code}"
    return None


def window_block(
    profile: JurisdictionProfile, now: datetime, where: Place | str | None
) -> tuple[str, str] | None:
    """(code, explanation) if `now` is outside the contact windows in any plausible zone."""
    place = _place(where)
    several = len(place.zones) > 1
    spans = ", ".join(f"{s:%H:%M}-{e:%H:%M}" for s, e in profile.windows)
    for tz_name, source in place.zones:
        local = now.astimezone(zone(tz_name))
        blocked_day = day_block(profile, local.date(), place.holiday_subdiv)
        if blocked_day:
            code, why = blocked_day
            if code == "public_holiday" and place.region:
                why += f" in {place.region}"
            if several:
                why += f" in {tz_name} ({source})"
            return code, why
    outside = []
    for tz_name, source in place.zones:
        local = now.astimezone(zone(tz_name))
        clock = local.time().replace(tzinfo=None)
        if not any(start <= clock < end for start, end in profile.windows):
            outside.append(f"{local:%H:%M} in {tz_name}" + (f" ({source})" if several else ""))
    if not outside:
        return None
    why = f"{', '.join(outside)} is outside the {profile.code} contact hours ({spans})"
    if several:
        why += (
            f"; plausible zones: {place.describe()}: a time is convenient only if it is inside "
            "the hours in every one of them"
        )
    return "outside_hours", why


def common_window_start(
    profile: JurisdictionProfile, now: datetime, where: Place | str | None
) -> datetime | None:
    """The first instant at or after `now` inside the windows of every plausible zone (UTC), or
    None if they share none within SEARCH_DAYS."""
    place = _place(where)
    limit = now + timedelta(days=SEARCH_DAYS)
    at = now
    for _ in range(_MAX_ROUNDS):
        starts = [
            _next_in_zone(profile, at, tz_name, place.holiday_subdiv)
            for tz_name, _source in place.zones
        ]
        if any(s is None for s in starts):
            return None
        latest = max(s for s in starts if s is not None)
        if latest > limit:
            return None
        if all(s == latest for s in starts):
            return latest.astimezone(UTC)
        at = latest
    return None


def next_window_start(
    profile: JurisdictionProfile, now: datetime, where: Place | str | None
) -> datetime:
    """The first instant at or after `now` inside a contact window, in UTC (SEARCH_DAYS ahead
    if none: the caller then re-checks rather than sends)."""
    found = common_window_start(profile, now, where)
    return found if found is not None else (now + timedelta(days=SEARCH_DAYS)).astimezone(UTC)


def _next_in_zone(
    profile: JurisdictionProfile, now: datetime, tz_name: str, subdiv: str | None
) -> datetime | None:
    tz = zone(tz_name)
    local = now.astimezone(tz)
    for offset in range(SEARCH_DAYS + 1):
        day = local.date() + timedelta(days=offset)
        if day_block(profile, day, subdiv):
            continue
        for start, end in profile.windows:
            opens = datetime.combine(day, start, tzinfo=tz)
            closes = datetime.combine(day, end, tzinfo=tz)
            if local < closes:
                return max(local, opens).astimezone(UTC)
    return None
