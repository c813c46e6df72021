"""The statistics behind experiment results, standard library only.

Outcomes are yes/no per exposed debtor (paid within N days, replied...), so every arm is a
binomial proportion:

- the interval for one proportion is Wilson's score interval (right coverage even at a 10% rate
  and a few hundred debtors, where the Wald interval undercovers);
- the lift of an arm over control is the difference of proportions, with Newcombe's hybrid
  score interval (method 10 of Newcombe 1998), built from the two Wilson intervals;
- the probability that an arm is the best is estimated by Monte Carlo over the arms' Beta
  posteriors (uniform prior), which is also the traffic share Thompson sampling gives an arm.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054  # the 97.5% quantile of the standard normal


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


def wilson(successes: int, n: int, z: float = Z95) -> Interval:
    """Wilson's score interval for a proportion; (0, 1) when nothing was observed."""
    if n <= 0:
        return Interval(0.0, 1.0)
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def lift_interval(
    successes: int, n: int, control_successes: int, control_n: int, z: float = Z95
) -> Interval:
    """Newcombe's hybrid score interval for p(arm) - p(control)."""
    p1 = successes / n if n else 0.0
    p2 = control_successes / control_n if control_n else 0.0
    a, b = wilson(successes, n, z), wilson(control_successes, control_n, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - a.low) ** 2 + (b.high - p2) ** 2)
    high = d + math.sqrt((a.high - p1) ** 2 + (p2 - b.low) ** 2)
    return Interval(max(-1.0, low), min(1.0, high))


def prob_best(
    counts: Sequence[tuple[int, int]], *, draws: int = 4000, seed: int | None = 0
) -> list[float]:
    """P(arm has the highest true rate) for each (successes, n), by Monte Carlo on Beta(1+s, 1+f).

    Seeded by default so that a results page shows the same figures on every reload.
    """
    if not counts:
        return []
    rng = random.Random(seed)
    wins = [0] * len(counts)
    params = [(1 + s, 1 + max(n - s, 0)) for s, n in counts]
    beta = rng.betavariate
    for _ in range(draws):
        best_i, best_v = 0, -1.0
        for i, (alpha, b) in enumerate(params):
            v = beta(alpha, b)
            if v > best_v:
                best_i, best_v = i, v
        wins[best_i] += 1
    return [w / draws for w in wins]


def thompson_weights(
    counts: Sequence[tuple[int, int]],
    *,
    min_sample: int,
    draws: int = 4000,
    seed: int | None = 0,
) -> list[float]:
    """Traffic shares: equal until every arm has `min_sample` debtors, then P(best) per arm.

    Giving each arm its probability of being the best is Thompson sampling applied to a batch
    (randomised probability matching): one posterior draw per debtor would give the same shares
    on average, at the cost of a posterior draw inside every send.
    """
    if not counts:
        return []
    if any(n < min_sample for _, n in counts):
        return [1 / len(counts)] * len(counts)
    return prob_best(counts, draws=draws, seed=seed)


def pick(weights: Sequence[float], u: float) -> int:
    """The arm whose slice of [0, 1) holds `u` (weights need not sum to exactly 1)."""
    total = sum(weights)
    if total <= 0:
        raise ValueError("no arm has a share of the traffic")
    acc = 0.0
    for i, w in enumerate(weights):
        acc += w / total
        if u < acc:
            return i
    return max(i for i, w in enumerate(weights) if w > 0)
