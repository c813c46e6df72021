"""Promote the winner: the winning arm's variant becomes the template's wording, as a new
wording version (audited, restorable from the wording history like any admin edit).

The template keeps the variants no arm tested (other channels or tones) and loses the losing
arms' variants, so every later reminder sends the winner. The experiment is then finished.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from relance import audit, versioning
from relance.db.models import VersionedDocument
from relance.errors import BadInput, Conflict
from relance.experiments.models import Experiment
from relance.experiments.service import FINISHED, RUNNING, STOPPED
from relance.nlg import wording_versions
from relance.nlg.templates_store import active_templates


def promote(
    session: Session, experiment: Experiment, arm_index: int, *, actor: str, now: datetime
) -> VersionedDocument:
    if experiment.status not in (RUNNING, STOPPED):
        raise Conflict("experiment_not_promotable", f"the experiment is {experiment.status}")
    if not 0 <= arm_index < len(experiment.arms):
        raise BadInput("arm_invalid", f"no arm {arm_index} in this experiment")
    arm = experiment.arms[arm_index]
    if experiment.template is None or arm.variant_index is None:
        raise Conflict(
            "experiment_not_promotable",
            "a send-hour experiment has no wording to promote: stop it and plan at the winning "
            "hour through the policy",
        )
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
    experiment.status, experiment.promoted_arm = FINISHED, arm_index
    experiment.stopped_at = experiment.stopped_at or now
    experiment.version += 1
    versioning.save_version(
        session,
        f"experiment:{experiment.id}",
        {**experiment.definition(), "promoted_arm": arm_index},
        actor=actor,
        comment=f"promoted arm {arm_index}",
    )
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
