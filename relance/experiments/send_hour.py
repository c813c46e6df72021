"""Send-hour experiments: the planner schedules a stage's contacts at the debtor's arm's hour.

Each arm names a local hour, refused when the experiment is defined unless it lies wholly inside
every jurisdiction's contact windows (`service._send_hour_problems`). When a planning run has
written its contacts, the groups whose lead stage an experiment covers get `next_attempt_at` at
their debtor's arm's hour, today or on the next open day. The arm is the one the dispatcher will
record at the send (`service.expose`): the debtor's first exposure's, else the hash's slice of the
admin's fixed split. Nothing here decides whether the contact may go out: the dispatcher checks
the windows, caps, opt-outs and holidays at the send as for every contact, and defers it if the
debtor's own hours or a regional holiday close that hour.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance.compliance.profiles import profile_for
from relance.compliance.windows import day_block, zone
from relance.db.models import Conversation, Debtor, DunningAction
from relance.db.models.enums import Channel
from relance.experiments.assignment import arm_of
from relance.experiments.models import ExperimentExposure
from relance.experiments.service import SEND_HOUR, RunningExperiment, eligible, running_snapshot
from relance.policy.schema import Policy

MAX_DAYS_AHEAD = 7  # a week always has an open day
CHUNK = 500  # debtor ids per query


def arms_of(
    session: Session, experiment: RunningExperiment, debtor_ids: list[int]
) -> dict[int, int]:
    """The arm each debtor has or will get (the stopped ones included: the caller skips them)."""
    stored: dict[int, int] = {}
    for start in range(0, len(debtor_ids), CHUNK):
        stored.update(
            session.execute(
                select(ExperimentExposure.debtor_id, func.min(ExperimentExposure.arm_index))
                .where(
                    ExperimentExposure.experiment_id == experiment.id,
                    ExperimentExposure.debtor_id.in_(debtor_ids[start : start + CHUNK]),
                )
                .group_by(ExperimentExposure.debtor_id)
            ).all()
        )
    weights = [0.0 if i in experiment.stopped else w for i, w in enumerate(experiment.weights)]
    if sum(weights) <= 0:
        return stored
    return {d: stored[d] if d in stored else arm_of(experiment.key, d, weights) for d in debtor_ids}


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
    experiments = [e for e in running_snapshot(session) if e.factor == SEND_HOUR]
    if not experiments:
        return 0
    rows = session.execute(
        select(
            DunningAction,
            Debtor.segment,
            Debtor.risk_class,
            Debtor.timezone,
            Debtor.jurisdiction,
            func.coalesce(Conversation.language, Debtor.language),
        )
        .join(Debtor, Debtor.id == DunningAction.debtor_id)
        .outerjoin(Conversation, Conversation.debtor_id == Debtor.id)
        .where(
            DunningAction.run_id == run_id,
            DunningAction.status == "planned",
            DunningAction.kind == "contact",
        )
        .order_by(DunningAction.id)
    ).all()
    groups: dict[str, list[DunningAction]] = defaultdict(list)
    about: dict[str, tuple[str, str, str, str, str]] = {}
    for action, segment, risk, tz, jurisdiction, language in rows:
        groups[action.group_key].append(action)
        about[action.group_key] = (segment, risk, tz, jurisdiction, language)
    covered: dict[int, list[str]] = defaultdict(list)  # experiment index -> group keys
    for key, actions in groups.items():
        segment, risk, _, _, language = about[key]
        offsets = {s.key: s.offset_days for s in policy.track_for(segment, risk).stages}
        # The dispatcher's lead stage: the group's stage furthest into the ladder.
        lead = max(actions, key=lambda a: offsets.get(a.stage, -1)).stage
        channel = actions[0].channel or ""
        for index, experiment in enumerate(experiments):
            if channel != Channel.VOICE and eligible(
                experiment,
                template="",
                stage=lead,
                channel=channel,
                segment=segment,
                language=language,
            ):
                covered[index].append(key)
                break
    moved = 0
    for index, keys in covered.items():
        experiment = experiments[index]
        arms = arms_of(session, experiment, sorted({groups[k][0].debtor_id for k in keys}))
        for key in keys:
            arm = arms.get(groups[key][0].debtor_id)
            hour = None if arm is None or arm in experiment.stopped else experiment.hours[arm]
            if hour is None:
                continue  # an arm stopped by a guard rail: the usual timing
            _, _, tz, jurisdiction, _ = about[key]
            at = at_hour(hour, now=now, timezone=tz, jurisdiction=jurisdiction)
            if at is None:
                continue
            for action in groups[key]:
                action.next_attempt_at = at
            moved += 1
    return moved
