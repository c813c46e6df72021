"""Driving the reply retry job in tests: run it as the worker does, at a chosen time, and find
the times the debtor may (or may not) be contacted, from the compliance rules themselves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.compliance.location import Place, locate
from relance.compliance.profiles import contact_profile, profile_for
from relance.compliance.windows import common_window_start, window_block, zone
from relance.conversations.reply_retry import retry_due
from relance.db import session as db_session
from relance.db.models import Debtor, ReplyRetry
from relance.settings import get_settings


def run_retries(now: datetime) -> dict[str, int]:
    """One pass of the worker's `conversations.retry_replies` job at `now`."""
    return retry_due(db_session.get_sessionmaker(), now=now)


def the_retry(db: Session) -> ReplyRetry:
    retry = db.scalars(select(ReplyRetry)).one()
    db.refresh(retry)
    return retry


def open_at(debtor: Debtor | None, after: datetime) -> datetime:
    """The first moment from `after` on at which the debtor may be contacted (None: someone
    not on file, under the default jurisdiction's hours in the default time zone)."""
    if debtor is None:
        profile = profile_for(None)
        place = Place.single(get_settings().default_timezone)
    else:
        profile = contact_profile(debtor.jurisdiction, debtor.contact_from, debtor.contact_until)
        place = locate(debtor)
    if window_block(profile, after, place) is None:
        return after
    start = common_window_start(profile, after, place)
    assert start is not None
    return start


def closed_at(debtor: Debtor | None, after: datetime, kind: str) -> datetime:
    """A moment after `after` outside the debtor's contact hours: a Sunday at 11:00 local, or a
    weekday at 22:30 local ("night")."""
    tz = zone(debtor.timezone if debtor is not None else None)
    local = after.astimezone(tz) + timedelta(days=1)
    if kind == "sunday":
        while local.weekday() != 6:
            local += timedelta(days=1)
        moment = local.replace(hour=11, minute=0, second=0, microsecond=0)
    else:
        moment = local.replace(hour=22, minute=30, second=0, microsecond=0)
    return moment.astimezone(UTC)
