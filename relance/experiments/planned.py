"""The contacts a planning run has just written that a running experiment covers, with the arm
of each debtor: the one path by which the send-hour and channel-order experiments reach the
planner's output (relance/experiments/send_hour.py, channel_order.py).

The arm is the one the dispatcher will record at the send (`service.expose`): the debtor's first
exposure's, else the hash's slice of the admin's fixed split (these factors are refused with any
other allocation). A debtor whose arm was stopped by a guard rail keeps the usual plan.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance.db.models import Conversation, Debtor, DunningAction
from relance.db.models.enums import Channel
from relance.experiments.assignment import arm_of
from relance.experiments.models import ExperimentExposure
from relance.experiments.service import RunningExperiment, eligible, running_snapshot
from relance.policy.schema import Policy

CHUNK = 500  # debtor ids per query


@dataclass(frozen=True)
class CoveredGroup:
    """One planned contact (a debtor's group of rows) in an experiment, and the debtor's arm."""

    actions: list[DunningAction]
    arm: int
    timezone: str
    jurisdiction: str
    preferred_channel: str | None


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


def covered_groups(
    session: Session, run_id: int, *, policy: Policy, factor: str
) -> list[tuple[RunningExperiment, CoveredGroup]]:
    """This run's new contacts a running experiment of `factor` covers, each with its arm (the
    debtors whose arm was stopped left out)."""
    experiments = [e for e in running_snapshot(session) if e.factor == factor]
    if not experiments:
        return []
    rows = session.execute(
        select(
            DunningAction,
            Debtor.segment,
            Debtor.risk_class,
            Debtor.timezone,
            Debtor.jurisdiction,
            Debtor.preferred_channel,
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
    about: dict[str, tuple[str, str, str, str, str | None, str]] = {}
    for action, *debtor in rows:
        groups[action.group_key].append(action)
        about[action.group_key] = tuple(debtor)  # type: ignore[assignment]
    covered: dict[int, list[str]] = defaultdict(list)  # experiment index -> group keys
    for key, actions in groups.items():
        segment, risk, _, _, _, language = about[key]
        stages = {s.key: s for s in policy.track_for(segment, risk).stages}
        # The dispatcher's lead stage: the group's stage furthest into the ladder.
        lead = max(actions, key=lambda a: stages[a.stage].offset_days if a.stage in stages else -1)
        channel = actions[0].channel or ""
        for index, experiment in enumerate(experiments):
            if channel != Channel.VOICE and eligible(
                experiment,
                template="",
                stage=lead.stage,
                channel=channel,
                segment=segment,
                language=language,
                kind=stages[lead.stage].kind if lead.stage in stages else "",
            ):
                covered[index].append(key)
                break
    found: list[tuple[RunningExperiment, CoveredGroup]] = []
    for index, keys in covered.items():
        experiment = experiments[index]
        arms = arms_of(session, experiment, sorted({groups[k][0].debtor_id for k in keys}))
        for key in keys:
            arm = arms.get(groups[key][0].debtor_id)
            if arm is None or arm in experiment.stopped:
                continue  # an arm stopped by a guard rail: the usual plan
            _, _, tz, jurisdiction, preferred, _ = about[key]
            found.append((experiment, CoveredGroup(groups[key], arm, tz, jurisdiction, preferred)))
    return found
