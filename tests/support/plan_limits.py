"""Plan limits for tests: the consumer band the plan tests use, with what a test changes."""

from __future__ import annotations

import dataclasses
from typing import Any

from relance.policy.service import PlanLimits

CONSUMER = PlanLimits(
    max_installments=6,
    max_duration_days=180,
    min_first_payment_minor=0,
    min_first_payment_pct=10,
    min_installment_minor=3000,
    allowed_frequencies=("biweekly", "monthly"),
    segment="consumer",
    band_max_amount_minor=500_000,
)


def limits(**changes: Any) -> PlanLimits:
    """`CONSUMER` with `changes` (e.g. no minimum first payment, smaller installments)."""
    return dataclasses.replace(CONSUMER, **changes)
