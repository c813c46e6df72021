"""Promote the winner: what the winning arm varied becomes the new wording or dunning policy.

A wording experiment's winning variant becomes the template's wording, as a new wording version
(audited, restorable from the wording history like any admin edit). The template keeps the
variants no arm tested (other channels or tones) and loses the losing arms' variants, so every
later reminder sends the winner.

The other factors become a new dunning policy version (`policy.service.save_version`: validated
like an admin edit, audited `policy.saved`, restorable by rollback), in the tracks the experiment
covered (its segment's, or all):
- send hour: the experiment's stage gets `send_hour` = the arm's hour (the planner then plans
  its contacts at that local hour, `send_hour.schedule_policy_hours`);
- channel order: the stage's channels (every message stage's, for an experiment on the whole
  sequence) are reordered as the planner did for the arm: its channels first, in its order, then
  the others in the policy's order (`channel_order.in_arm_order`);
- stage offset: the stage's `offset_days` becomes the arm's day.
A track shared by both segments (`segment: "*"`) under an experiment on one segment is split:
a copy for that segment, changed, is inserted just before it. The arm is checked again against
the policy in force (ladder, formal notice, channels; `service.policy_problems`) and the new
document against the schema (contact windows for the hour): a refusal is `invalid_policy`. The
policy has no language or per-channel setting, so an experiment restricted to a language or (send
hour) to one channel cannot become the policy: `PolicyCannotExpress`.

The experiment is then finished.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from relance import audit, versioning
from relance.db.models import VersionedDocument
from relance.errors import BadInput, Conflict
from relance.experiments import service
from relance.experiments.channel_order import in_arm_order
from relance.experiments.models import Experiment, ExperimentArm
from relance.experiments.service import (
    CHANNEL_ORDER,
    FINISHED,
    RUNNING,
    SEND_HOUR,
    STAGE_OFFSET,
    STOPPED,
    WORDING,
)
from relance.nlg import wording_versions
from relance.nlg.templates_store import active_templates
from relance.policy import service as policy_service


class PolicyCannotExpress(Conflict):
    """The experiment covered debtors or contacts the dunning policy cannot single out (a
    language, one channel): its winner cannot become the policy (409
    `policy_cannot_express`)."""

    def __init__(self, message: str) -> None:
        super().__init__("policy_cannot_express", message)


def promote(
    session: Session, experiment: Experiment, arm_index: int, *, actor: str, now: datetime
) -> VersionedDocument:
    if experiment.status not in (RUNNING, STOPPED):
        raise Conflict("experiment_not_promotable", f"the experiment is {experiment.status}")
    if not 0 <= arm_index < len(experiment.arms):
        raise BadInput("arm_invalid", f"no arm {arm_index} in this experiment")
    arm = experiment.arms[arm_index]
    if experiment.factor != WORDING:
        return _promote_to_policy(session, experiment, arm, actor=actor, now=now)
    if experiment.template is None or arm.variant_index is None:
        raise Conflict("experiment_not_promotable", "this wording arm names no variant")
    variants = list(active_templates(session).get(experiment.template) or [])
    tested = {a.variant_index for a in experiment.arms if a.variant_index is not None}
    if not variants or max(tested) >= len(variants):
        raise Conflict(
            "wording_changed",
            f"{experiment.template} no longer has the variants this experiment tested",
        )
    winner = variants[arm.variant_index]
    kept = [v for i, v in enumerate(variants) if i not in tested]
    overrides = wording_versions.overrides(session)
    overrides[experiment.template] = [winner, *kept]
    version = wording_versions.save(
        session,
        overrides,
        actor=actor,
        comment=f"experiment {experiment.key}: promote arm {arm.name}"[:500],
    )
    _finish(session, experiment, arm, actor=actor, now=now)
    audit.record(
        session,
        actor=actor,
        action="experiment.promoted",
        entity=experiment,
        arm=arm_index,
        arm_name=arm.name,
        template=experiment.template,
        wording_version=version.version,
    )
    return version


def _finish(
    session: Session, experiment: Experiment, arm: ExperimentArm, *, actor: str, now: datetime
) -> None:
    experiment.status, experiment.promoted_arm = FINISHED, arm.index
    experiment.stopped_at = experiment.stopped_at or now
    experiment.version += 1
    versioning.save_version(
        session,
        f"experiment:{experiment.id}",
        {**experiment.definition(), "promoted_arm": arm.index},
        actor=actor,
        comment=f"promoted arm {arm.index}",
    )


def _promote_to_policy(
    session: Session, experiment: Experiment, arm: ExperimentArm, *, actor: str, now: datetime
) -> VersionedDocument:
    """The arm's hour, channel order or stage day as a new, active policy version."""
    if experiment.language is not None:
        raise PolicyCannotExpress(
            f"the experiment covered {experiment.language} debtors only and the dunning policy "
            "has no per-language setting: stop it and change the policy by hand if the winner "
            "should apply to everyone"
        )
    if experiment.channel is not None:
        raise PolicyCannotExpress(
            f"the experiment covered {experiment.channel} contacts only and the policy's "
            "settings are per stage, not per channel: stop it and change the policy by hand if "
            "the winner should apply to every channel"
        )
    policy = policy_service.active_policy(session)
    spec = service.ExperimentSpec(
        key=experiment.key,
        name=experiment.name,
        template=None,
        factor=experiment.factor,
        stage=experiment.stage,
        segment=experiment.segment,
        arms=[
            service.ArmSpec(
                arm.name,
                hour=arm.hour,
                channels=tuple(arm.channels) if arm.channels is not None else None,
                offset_days=arm.offset_days,
            )
        ],
    )
    problems = service.policy_problems(spec, policy)
    if problems:
        raise policy_service.PolicyInvalid(problems)
    in_force = policy_service.active_document(session)
    document = copy.deepcopy(in_force)
    changed = _apply(document, experiment, arm)
    if not changed:
        raise Conflict(
            "policy_changed",
            f"the policy in force has no stage {experiment.stage or '(message)'} for the "
            "debtors this experiment covered",
        )
    current = policy_service.active_row(session)
    unchanged = current is not None and not _differs(in_force, document, experiment)
    # The winner is what the policy already says (usually the control arm): the experiment
    # ends, and no identical policy version is added to the history.
    row = (
        current
        if unchanged and current is not None
        else policy_service.save_version(
            session,
            document,
            actor=actor,
            comment=f"experiment {experiment.key}: promote arm {arm.name}"[:500],
        )
    )
    _finish(session, experiment, arm, actor=actor, now=now)
    audit.record(
        session,
        actor=actor,
        action="experiment.promoted",
        entity=experiment,
        arm=arm.index,
        arm_name=arm.name,
        factor=experiment.factor,
        stage=experiment.stage,
        segment=experiment.segment,
        stages=changed,
        policy_version=row.version,
        policy_unchanged=unchanged,
    )
    return row


def _differs(before: dict[str, Any], after: dict[str, Any], experiment: Experiment) -> bool:
    """Whether the arm changed anything for the debtors it covered. A track copied for one
    segment (`_apply`) counts only if its stages differ from the track it was copied from."""
    stages_before = {
        (track.get("segment", "*"), track["name"]): track["stages"] for track in before["tracks"]
    }
    for track in after["tracks"]:
        name = track["name"]
        original = stages_before.get((track.get("segment", "*"), name))
        if original is None and experiment.segment is not None:
            original = stages_before.get(("*", name.removesuffix(f"_{experiment.segment}")))
        if original != track["stages"]:
            return True
    return False


def _apply(document: dict[str, Any], experiment: Experiment, arm: ExperimentArm) -> list[str]:
    """Write the arm into the tracks the experiment covered (in place); returns the
    `track.stage` changed."""
    segment = experiment.segment
    tracks: list[dict[str, Any]] = []
    for track in document["tracks"]:
        if segment is not None and track.get("segment", "*") == "*":
            # Shared by both segments: the other segment keeps it as it is.
            split = copy.deepcopy(track)
            split["segment"], split["name"] = segment, f"{track['name']}_{segment}"
            tracks.append(split)
        tracks.append(track)
    document["tracks"] = tracks
    changed: list[str] = []
    for track in tracks:
        if segment is not None and track.get("segment", "*") != segment:
            continue
        for stage in track["stages"]:
            if experiment.stage not in (None, stage["key"]):
                continue
            if experiment.factor == SEND_HOUR and stage["kind"] == "message":
                stage["send_hour"] = arm.hour
            elif experiment.factor == CHANNEL_ORDER and stage["kind"] == "message":
                stage["channels"] = in_arm_order(list(stage["channels"]), tuple(arm.channels or ()))
            elif experiment.factor == STAGE_OFFSET and stage["kind"] in ("message", "letter"):
                stage["offset_days"] = arm.offset_days
            else:
                continue
            changed.append(f"{track['name']}.{stage['key']}")
    return changed
