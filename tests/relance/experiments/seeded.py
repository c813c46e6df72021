"""An experiment with matured debtors in both arms over two days, and the figures it must show
(shared by the results API and console page tests)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from relance.db.base import utcnow
from relance.experiments.models import Experiment, ExperimentExposure
from tests.factories import make_debtor, make_payment

# Per arm and day of first exposure (20 and 18 days ago, a 14-day window): (exposed, paid).
# Control 1/4 then 1/4 (25%), the variant 2/4 then 3/4 (62.5%); one variant debtor exposed two
# days ago has not matured (exposed, not in n).
PLANTED = {0: [(4, 1), (4, 1)], 1: [(4, 2), (4, 3)]}
DAYS_AGO = (20, 18)
PAID_MINOR = 5000
# Newcombe's interval for 5/8 - 2/8.
LIFT_LOW, LIFT_HIGH = -0.0919247, 0.6726371
# The chart's polylines (640x220, peak 100%): day 1 then day 2, per arm.
POINTS = {0: "44.0,147.0 520.0,147.0", 1: "44.0,102.0 520.0,79.5"}


def expose_with_outcomes(db: Session, experiment: Experiment) -> None:
    for arm, days in PLANTED.items():
        for (exposed, paid), days_ago in zip(days, DAYS_AGO, strict=True):
            t0 = utcnow() - timedelta(days=days_ago)
            for k in range(exposed):
                debtor = make_debtor(db, channels=("sms", "whatsapp"))
                _exposure(db, experiment, arm, debtor.id, t0)
                if k < paid:
                    make_payment(db, debtor, PAID_MINOR, received_at=t0 + timedelta(days=2))
    fresh = make_debtor(db, channels=("sms", "whatsapp"))
    _exposure(db, experiment, 1, fresh.id, utcnow() - timedelta(days=2))
    db.flush()


def _exposure(db: Session, experiment: Experiment, arm: int, debtor_id: int, at: object) -> None:
    db.add(
        ExperimentExposure(
            experiment_id=experiment.id,
            arm_index=arm,
            debtor_id=debtor_id,
            channel="sms",
            stage="pre_due",
            invoice_ids=[],
            exposed_at=at,
        )
    )
