"""Stage-offset experiments: the planner reaches a stage on the debtor's arm's day.

Each arm names the day, from the due date, the experiment's stage is reached on (the second
reminder at due+7 or due+10), refused when the experiment is defined if it would move the stage
to or past a neighbour in any track, across the due date, or bring the formal notice before the
law allows (`service.policy_problems`). While planning, each debtor the experiment covers (its
segment and language) gets its track with that stage at its arm's day; the arm is the one the
dispatcher records at the send (`planned.arms_of`, as for the send-hour and channel-order
factors). Only the day a stage becomes due moves: the dispatcher still checks the windows, caps,
opt-outs and holidays at the send.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance.db.models import Conversation, Debtor
from relance.experiments.planned import arms_of
from relance.experiments.service import STAGE_OFFSET, RunningExperiment, running_snapshot
from relance.policy.schema import Policy, Track


def running_offsets(session: Session) -> list[RunningExperiment]:
    return [e for e in running_snapshot(session) if e.factor == STAGE_OFFSET]


def earliest_offset(policy: Policy, experiments: list[RunningExperiment]) -> int:
    """The earliest day any debtor may reach a stage on (how far ahead the planner reads)."""
    moved = [o for e in experiments for o in e.offsets if o is not None]
    return min([policy.min_offset(), *moved])


def moved_track(track: Track, stage: str, offset_days: int) -> Track:
    return track.model_copy(
        update={
            "stages": [
                s.model_copy(update={"offset_days": offset_days}) if s.key == stage else s
                for s in track.stages
            ]
        }
    )


def tracks_for(
    session: Session,
    experiments: list[RunningExperiment],
    policy: Policy,
    debtors: Iterable[tuple[int, str, str]],
) -> dict[int, Track]:
    """The track of each of these debtors (id, segment, risk class) whose arm moves a stage;
    the others keep the policy's."""
    if not experiments:
        return {}
    about = {debtor_id: (segment, risk) for debtor_id, segment, risk in debtors}
    languages: dict[int, str] = {}
    if about and any(e.language is not None for e in experiments):
        languages = dict(
            session.execute(
                select(Debtor.id, func.coalesce(Conversation.language, Debtor.language))
                .outerjoin(Conversation, Conversation.debtor_id == Debtor.id)
                .where(Debtor.id.between(min(about), max(about)))
            ).all()
        )
    tracks: dict[int, Track] = {}
    copies: dict[tuple[str, str, int], Track] = {}
    for experiment in experiments:
        assert experiment.stage is not None  # required for this factor
        candidates = sorted(
            d
            for d, (segment, _) in about.items()
            if d not in tracks
            and experiment.segment in (None, segment)
            and experiment.language in (None, languages.get(d))
        )
        arms = arms_of(session, experiment, candidates)
        for debtor_id in candidates:
            arm = arms.get(debtor_id)
            offset = None if arm is None or arm in experiment.stopped else experiment.offsets[arm]
            if offset is None:
                continue  # an arm stopped by a guard rail: the policy's day
            track = policy.track_for(*about[debtor_id])
            if all(s.key != experiment.stage for s in track.stages):
                continue
            key = (track.name, experiment.stage, offset)
            if key not in copies:
                copies[key] = moved_track(track, experiment.stage, offset)
            tracks[debtor_id] = copies[key]
    return tracks
