"""Send-hour experiments: the planner schedules a stage's contacts at the debtor's arm's hour.

Each arm names a local hour, refused when the experiment is defined unless it lies wholly inside
every jurisdiction's contact windows (`service._send_hour_problems`). When a planning run has
written its contacts, the groups whose lead stage an experiment covers get `next_attempt_at` at
their debtor's arm's hour, today or on the next open day (the groups and arms come from
`planned.covered_groups`, shared with channel-order experiments). Nothing here decides whether
the contact may go out: the dispatcher checks the windows, caps, opt-outs and holidays at the
send as for every contact, and defers it if the debtor's own hours or a regional holiday close
that hour.

A stage's own `send_hour` in the policy (what promoting a send-hour experiment writes,
relance/experiments/promotion.py) is applied the same way to every contact the stage leads
(`schedule_policy_hours`), before the learned best time and before a running experiment's arm.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.compliance.profiles import profile_for
from relance.compliance.windows import day_block, zone
from relance.db.models import Debtor, DunningAction
from relance.db.models.enums import Channel
from relance.experiments.planned import covered_groups
from relance.experiments.service import SEND_HOUR
from relance.policy.schema import Policy

MAX_DAYS_AHEAD = 7  # a week always has an open day


def at_hour(hour: int, *, now: datetime, timezone: str, jurisdiction: str) -> datetime | None:
    """The next `hour`:00 in the debtor's time zone, from now, on a day contacts are allowed."""
    tz = zone(timezone)
    local_now = now.astimezone(tz)
    profile = profile_for(jurisdiction)
    for days in range(MAX_DAYS_AHEAD + 1):
        day = local_now.date() + timedelta(days=days)
        at = datetime.combine(day, time(hour), tzinfo=tz)
        if at >= local_now and day_block(profile, day) is None:
            return at.astimezone(UTC)
    return None


def schedule_send_hours(session: Session, run_id: int, *, now: datetime, policy: Policy) -> int:
    """Move this run's new contacts covered by a send-hour experiment to their arm's hour.
    Returns the groups moved."""
    moved = 0
    for experiment, group in covered_groups(session, run_id, policy=policy, factor=SEND_HOUR):
        hour = experiment.hours[group.arm]
        if hour is None:
            continue
        at = at_hour(hour, now=now, timezone=group.timezone, jurisdiction=group.jurisdiction)
        if at is None:
            continue
        for action in group.actions:
            action.next_attempt_at = at
        moved += 1
    return moved


def schedule_policy_hours(session: Session, run_id: int, *, now: datetime, policy: Policy) -> int:
    """Move this run's new contacts whose lead stage has a `send_hour` in the policy to that
    local hour (today or the next open day). Returns the groups moved."""
    if not any(s.send_hour is not None for t in policy.tracks for s in t.stages):
        return 0
    rows = session.execute(
        select(
            DunningAction,
            Debtor.segment,
            Debtor.risk_class,
            Debtor.timezone,
            Debtor.jurisdiction,
        )
        .join(Debtor, Debtor.id == DunningAction.debtor_id)
        .where(
            DunningAction.run_id == run_id,
            DunningAction.status == "planned",
            DunningAction.kind == "contact",
        )
        .order_by(DunningAction.id)
    ).all()
    groups: dict[str, list[DunningAction]] = {}
    about: dict[str, tuple[str, str, str, str]] = {}
    for action, segment, risk, timezone, jurisdiction in rows:
        groups.setdefault(action.group_key, []).append(action)
        about[action.group_key] = (segment, risk, timezone, jurisdiction)
    moved = 0
    for key, actions in groups.items():
        segment, risk, timezone, jurisdiction = about[key]
        stages = {s.key: s for s in policy.track_for(segment, risk).stages}
        # The dispatcher's lead stage: the group's stage furthest into the ladder.
        lead = max(actions, key=lambda a: stages[a.stage].offset_days if a.stage in stages else -1)
        stage = stages.get(lead.stage or "")
        if stage is None or stage.send_hour is None or actions[0].channel == Channel.VOICE:
            continue
        at = at_hour(stage.send_hour, now=now, timezone=timezone, jurisdiction=jurisdiction)
        if at is None:
            continue
        for action in actions:
            action.next_attempt_at = at
        moved += 1
    return moved
