"""The statistics find the planted effects of the seeded population (relance/simulator/population)."""

from __future__ import annotations

import random

from relance.experiments import stats
from relance.experiments.assignment import arm_of, unit_point
from relance.experiments.best_time import best_hour
from relance.simulator import population

PLANTED = (0.10, 0.12)  # control pays 10%, the variant 12%


def test_thompson_sends_most_traffic_to_the_planted_best_arm_in_90_percent_of_runs() -> None:
    wins = 0
    for seed in range(50):
        counts = population.thompson(
            list(PLANTED), debtors=8000, batch=500, min_sample=400, seed=seed, draws=500
        )
        if counts[1].n > counts[0].n:
            wins += 1
    assert wins >= 45, wins


def test_the_95_percent_lift_interval_covers_the_planted_lift_in_90_to_99_percent_of_runs() -> None:
    runs = 200
    covered = sum(population.lift_covered(PLANTED, 3000, seed) for seed in range(runs))
    assert 0.90 * runs <= covered <= 0.99 * runs, covered


def test_the_learned_best_hour_is_the_planted_peak() -> None:
    for peak in (10, 18):
        hours = population.reply_hours(peak, 2000, seed=peak)
        assert best_hour(hours, range(8, 21)) == peak


def test_best_hour_stays_inside_the_allowed_window() -> None:
    hours = population.reply_hours(22, 2000, seed=1)
    assert best_hour(hours, range(8, 21)) == 20


def test_newcombe_interval_matches_the_published_example() -> None:
    # Newcombe (1998), table II, example (a): 56/70 vs 48/80 -> 0.0524 to 0.3339 (method 10).
    interval = stats.lift_interval(56, 70, 48, 80)
    assert round(interval.low, 4) == 0.0524
    assert round(interval.high, 4) == 0.3339


def test_wilson_interval_of_nothing_observed_is_everything() -> None:
    assert stats.wilson(0, 0) == stats.Interval(0.0, 1.0)


def test_probability_of_being_best_follows_the_evidence() -> None:
    p = stats.prob_best([(100, 1000), (150, 1000)])
    assert p[1] > 0.99 and abs(sum(p) - 1) < 1e-9
    assert (
        stats.prob_best([(10, 100), (10, 100)], draws=4000)[0]
        == stats.prob_best([(10, 100), (10, 100)], draws=4000)[0]
    )  # seeded: a results page shows the same figures on every reload


def test_thompson_weights_are_equal_until_the_minimum_sample() -> None:
    assert stats.thompson_weights([(50, 100), (5, 100)], min_sample=200) == [0.5, 0.5]
    shifted = stats.thompson_weights([(100, 500), (150, 500)], min_sample=200)
    assert shifted[1] > 0.9


def test_assignment_is_stable_and_follows_the_split() -> None:
    weights = [1.0, 1.0, 2.0]
    first = [arm_of("exp-a", debtor, weights) for debtor in range(1, 4001)]
    again = [arm_of("exp-a", debtor, weights) for debtor in range(1, 4001)]
    assert first == again
    shares = [first.count(i) / len(first) for i in range(3)]
    assert abs(shares[2] - 0.5) < 0.03 and abs(shares[0] - 0.25) < 0.03
    # Another experiment shuffles debtors independently of this one.
    other = [arm_of("exp-b", debtor, weights) for debtor in range(1, 4001)]
    assert sum(a == b for a, b in zip(first, other, strict=True)) < 0.5 * len(first)
    assert 0 <= unit_point("exp-a", 1) < 1


def test_pick_never_gives_traffic_to_a_stopped_arm() -> None:
    rng = random.Random(3)
    assert {stats.pick([1.0, 0.0, 1.0], rng.random()) for _ in range(2000)} == {0, 2}
