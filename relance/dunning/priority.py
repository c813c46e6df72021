"""Priority score: who is contacted first (amount, days late, risk class, broken promises)."""

from __future__ import annotations

from relance.policy.schema import Priority


def score(
    weights: Priority, *, balance_minor: int, days_late: int, risk_class: str, broken_promises: int
) -> float:
    amount = min(balance_minor / 100_000 * weights.per_thousand_euros, weights.amount_cap)
    lateness = min(max(days_late, 0), weights.days_cap) * weights.per_day_late
    risk = weights.risk_weights.get(risk_class, 0.0)
    return round(amount + lateness + risk + broken_promises * weights.per_broken_promise, 3)
