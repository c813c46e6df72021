"""Which arm a debtor is in: a hash of the experiment's key and the debtor's id.

The hash gives each debtor a fixed point `u` in [0, 1); the arm is the slice of the current
traffic shares that holds `u`. Under a fixed split that alone makes the arm stable; under Thompson
sampling the shares move, so the arm of the debtor's first exposure is kept for the whole
experiment (`service.expose` reads it inside the INSERT of each later exposure): a debtor never
sees two wordings of the same reminder.
"""

from __future__ import annotations

import hashlib

from relance.experiments.stats import pick


def unit_point(experiment_key: str, debtor_id: int) -> float:
    """A uniform, reproducible number in [0, 1) for this experiment and debtor."""
    digest = hashlib.sha256(f"{experiment_key}:{debtor_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def arm_of(experiment_key: str, debtor_id: int, weights: list[float]) -> int:
    return pick(weights, unit_point(experiment_key, debtor_id))
