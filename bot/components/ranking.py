"""Averaging intent rankings: the arithmetic of the DIET ensemble, kept free of Rasa imports so
that the app's test suite can check it without the Rasa venv."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Ranking = Sequence[Mapping[str, Any]]


def average_rankings(rankings: Sequence[Ranking]) -> list[dict[str, Any]]:
    """The mean confidence of every intent over the members that ranked at all, best first.

    A member that produced no ranking (a message with no features) does not vote; an intent a
    voting member left out counts as 0 for that member. Ties keep the order in which intents
    first appear, so the result does not depend on dictionary order.
    """
    voters = [ranking for ranking in rankings if ranking]
    if not voters:
        return []
    totals: dict[str, float] = {}
    for ranking in voters:
        for entry in ranking:
            totals[entry["name"]] = totals.get(entry["name"], 0.0) + float(entry["confidence"])
    averaged = [{"name": name, "confidence": total / len(voters)} for name, total in totals.items()]
    return sorted(averaged, key=lambda entry: -entry["confidence"])
