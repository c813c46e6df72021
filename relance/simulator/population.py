"""A seeded debtor population with planted effects, to check the experiment statistics.

The true rates are known here (arm B pays 12% where A pays 10%; replies peak at 18:00), so a test
can ask whether the methods the results page uses find them: Thompson sampling sends most traffic
to the best arm, the 95% interval for lift covers the true lift about 95% of the time, the learned
best hour is the planted peak. Standard library only, and small enough to run 50 seeded runs
in a few seconds.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from relance.experiments.stats import lift_interval, pick, thompson_weights


@dataclass(frozen=True)
class ArmCounts:
    successes: int
    n: int


def bernoulli_count(rng: random.Random, p: float, n: int) -> int:
    draw = rng.random
    return sum(1 for _ in range(n) if draw() < p)


def fixed_split(rates: Sequence[float], n_per_arm: int, seed: int) -> list[ArmCounts]:
    """Equal traffic, one outcome per debtor drawn from the arm's true rate."""
    rng = random.Random(seed)
    return [ArmCounts(bernoulli_count(rng, p, n_per_arm), n_per_arm) for p in rates]


def thompson(
    rates: Sequence[float],
    *,
    debtors: int,
    batch: int,
    min_sample: int,
    seed: int,
    draws: int = 1000,
) -> list[ArmCounts]:
    """Debtors arrive in batches; each batch is split by the shares the hourly job would set
    (`thompson_weights` on the outcomes seen so far), each debtor's arm picked as in production
    (a uniform point in the shares)."""
    rng = random.Random(seed)
    counts = [[0, 0] for _ in rates]
    for start in range(0, debtors, batch):
        weights = thompson_weights(
            [(s, n) for s, n in counts],
            min_sample=min_sample,
            draws=draws,
            seed=rng.randrange(2**32),
        )
        per_arm = [0] * len(rates)
        for _ in range(min(batch, debtors - start)):
            per_arm[pick(weights, rng.random())] += 1
        for i, n in enumerate(per_arm):
            counts[i][0] += bernoulli_count(rng, rates[i], n)
            counts[i][1] += n
    return [ArmCounts(s, n) for s, n in counts]


def lift_covered(rates: tuple[float, float], n_per_arm: int, seed: int) -> bool:
    """Whether the 95% interval of (arm - control) from one simulated run covers the true lift."""
    control, arm = fixed_split(rates, n_per_arm, seed)
    interval = lift_interval(arm.successes, arm.n, control.successes, control.n)
    return interval.covers(rates[1] - rates[0])


def reply_hours(peak_hour: int, n: int, seed: int, *, spread: float = 1.5) -> list[int]:
    """Local hours of `n` replies: 45% around the planted peak, the rest spread over 8:00-20:59."""
    rng = random.Random(seed)
    hours = []
    for _ in range(n):
        if rng.random() < 0.45:
            hours.append(round(rng.gauss(peak_hour, spread)) % 24)
        else:
            hours.append(rng.randrange(8, 21))
    return hours
