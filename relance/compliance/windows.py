"""Contact windows in the debtor's local time: is now allowed, and if not, when next."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from relance.compliance.profiles import JurisdictionProfile

SEARCH_DAYS = 21


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "Europe/Paris")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Europe/Paris")


def day_block(profile: JurisdictionProfile, day: date) -> tuple[str, str] | None:
    """Why a whole local day is closed (code, explanation), or None if contacts are allowed."""
    if day.weekday() == 6 and 6 not in profile.allowed_weekdays:
        return "sunday", f"{day.isoformat()} is a Sunday"
    holiday = profile.is_holiday(day)
    if holiday:
        return "public_holiday", f"{day.isoformat()} is a public holiday ({holiday})"
    if day.weekday() not in profile.allowed_weekdays:
        return "closed_day", f"{day.strftime('%A')} is not a contact day in {profile.code}"
    return None


def window_block(
    profile: JurisdictionProfile, now: datetime, tz_name: str | None
) -> tuple[str, str] | None:
    """(code, explanation) if `now` is outside the debtor's contact windows, else None."""
    local = now.astimezone(zone(tz_name))
    blocked_day = day_block(profile, local.date())
    if blocked_day:
        return blocked_day
    clock = local.time().replace(tzinfo=None)
    if any(start <= clock < end for start, end in profile.windows):
        return None
    spans = ", ".join(f"{s:%H:%M}-{e:%H:%M}" for s, e in profile.windows)
    return (
        "outside_hours",
        f"{local:%H:%M} in {tz_name} is outside the {profile.code} contact hours ({spans})",
    )


def next_window_start(profile: JurisdictionProfile, now: datetime, tz_name: str | None) -> datetime:
    """The first instant at or after `now` inside a contact window, in UTC."""
    tz = zone(tz_name)
    local = now.astimezone(tz)
    for offset in range(SEARCH_DAYS):
        day = local.date() + timedelta(days=offset)
        if day_block(profile, day):
            continue
        for start, end in profile.windows:
            opens = datetime.combine(day, start, tzinfo=tz)
            closes = datetime.combine(day, end, tzinfo=tz)
            if local < closes:
                return max(local, opens).astimezone(UTC)
    return (local + timedelta(days=SEARCH_DAYS)).astimezone(UTC)
