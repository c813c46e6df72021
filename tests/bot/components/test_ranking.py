"""The ensemble's averaging (bot/components/ranking.py), without the Rasa venv."""

import pytest

from bot.components.ranking import average_rankings


def test_the_mean_confidence_decides_even_against_a_majority_of_narrow_wins() -> None:
    rankings = [
        [{"name": "inform", "confidence": 0.51}, {"name": "cannot_pay", "confidence": 0.49}],
        [{"name": "inform", "confidence": 0.52}, {"name": "cannot_pay", "confidence": 0.48}],
        [{"name": "cannot_pay", "confidence": 0.95}, {"name": "inform", "confidence": 0.05}],
    ]

    averaged = average_rankings(rankings)

    assert [entry["name"] for entry in averaged] == ["cannot_pay", "inform"]
    assert averaged[0]["confidence"] == pytest.approx((0.49 + 0.48 + 0.95) / 3)
    assert averaged[1]["confidence"] == pytest.approx((0.51 + 0.52 + 0.05) / 3)


def test_an_intent_a_member_left_out_counts_as_zero_for_that_member() -> None:
    rankings = [
        [{"name": "greet", "confidence": 0.9}, {"name": "thank", "confidence": 0.1}],
        [{"name": "greet", "confidence": 1.0}],
    ]

    averaged = {entry["name"]: entry["confidence"] for entry in average_rankings(rankings)}

    assert averaged == {"greet": pytest.approx(0.95), "thank": pytest.approx(0.05)}


def test_a_member_without_a_ranking_does_not_vote() -> None:
    rankings = [[], [{"name": "affirm", "confidence": 0.8}, {"name": "deny", "confidence": 0.2}]]

    assert average_rankings(rankings) == [
        {"name": "affirm", "confidence": pytest.approx(0.8)},
        {"name": "deny", "confidence": pytest.approx(0.2)},
    ]
    assert average_rankings([[], []]) == []


def test_ties_keep_the_order_of_first_appearance() -> None:
    rankings = [[{"name": "deny", "confidence": 0.5}, {"name": "affirm", "confidence": 0.5}]]

    assert [entry["name"] for entry in average_rankings(rankings)] == ["deny", "affirm"]
