"""The DIET ensemble component (bot/components/diet_ensemble.py), trained for real in the Rasa
venv by ensemble_roundtrip.py: persisted, loaded back, and its ranking checked against the
members' own rankings."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from bot.components.ranking import average_rankings
from relance.runtime.paths import PROJECT_ROOT
from tests.support.rasa_venv import run_in_rasa_venv

SCRIPT = Path(__file__).with_name("ensemble_roundtrip.py")
# The one real training runs inside the first test: 3.7 minutes of one core on a quiet 2-core
# machine (TensorFlow retraces per member), past pytest's default 300 s.
pytestmark = pytest.mark.timeout(900)


@cache
def roundtrip() -> dict[str, Any]:
    """One training for the whole module (minutes: see pytestmark)."""
    return run_in_rasa_venv(SCRIPT)


def test_members_are_stored_inside_the_ensembles_own_resource() -> None:
    assert roundtrip()["stored"] == ["member_0", "member_1"]


def test_members_are_distinct_draws() -> None:
    first, second = roundtrip()["members"]

    assert {e["name"]: e["confidence"] for e in first} != {
        e["name"]: e["confidence"] for e in second
    }


def test_the_loaded_ensemble_ranks_by_the_members_mean_cut_to_ranking_length() -> None:
    result = roundtrip()
    expected = average_rankings(result["members"])[:2]

    assert [e["name"] for e in result["ranking"]] == [e["name"] for e in expected]
    for got, want in zip(result["ranking"], expected, strict=True):
        assert got["confidence"] == pytest.approx(want["confidence"], abs=1e-6)
    assert result["intent"] == result["ranking"][0]


def test_rasas_training_cache_key_covers_the_whole_component_module() -> None:
    """Rasa keys its cache on the class's source; member_config, the members' storage and the
    averaging live beside it, and a change to them must not reuse a cached ensemble."""
    components = PROJECT_ROOT / "bot" / "components"
    digest = hashlib.sha256()
    for name in ("diet_ensemble.py", "ranking.py"):
        digest.update((components / name).read_bytes())

    assert roundtrip()["fingerprint_addon"] == digest.hexdigest()


def test_intent_is_its_own_dict_not_the_first_ranking_entry() -> None:
    assert roundtrip()["intent_is_a_copy"]


def test_entities_are_credited_to_the_ensemble() -> None:
    """An amount learnt from annotated examples: predicted, and named after the ensemble (Rasa's
    evaluation matches entities to the pipeline's extractor names)."""
    assert roundtrip()["entity_extractors"] == ["DIETEnsembleClassifier"]


def test_an_ensemble_missing_a_member_refuses_to_load() -> None:
    assert "ensemble members [1] have no trained model" in roundtrip()["incomplete"]
