"""CI trains bot/config.ci.yml, users run bot/config.yml: the test stories only vouch for the
shipped model if the two differ where the CI config says they do, and nowhere else."""

from __future__ import annotations

from typing import Any

import yaml

from relance.runtime.paths import BOT_DIR

ENSEMBLE = "bot.components.diet_ensemble.DIETEnsembleClassifier"


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((BOT_DIR / name).read_text(encoding="utf-8"))


def _without(components: list[dict[str, Any]], name: str, key: str) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in c.items() if not (c["name"] == name and k == key)} for c in components
    ]


def test_ci_differs_from_production_only_by_ensemble_size_and_ted_epochs() -> None:
    production, ci = _load("config.yml"), _load("config.ci.yml")

    assert _without(ci["pipeline"], ENSEMBLE, "ensemble_size") == _without(
        production["pipeline"], ENSEMBLE, "ensemble_size"
    )
    assert _without(ci["policies"], "TEDPolicy", "epochs") == _without(
        production["policies"], "TEDPolicy", "epochs"
    )
    assert {k: v for k, v in ci.items() if k not in ("pipeline", "policies")} == {
        k: v for k, v in production.items() if k not in ("pipeline", "policies")
    }


def test_production_averages_three_diets_and_ci_trains_one_through_the_same_component() -> None:
    sizes = {
        name: [c.get("ensemble_size") for c in _load(name)["pipeline"] if c["name"] == ENSEMBLE]
        for name in ("config.yml", "config.ci.yml")
    }

    assert sizes == {"config.yml": [3], "config.ci.yml": [1]}
