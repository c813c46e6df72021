"""The model cache key (relance/runtime/training.py): retrain when anything that shapes the model
changes, including the custom NLU components' code, and only then."""

from __future__ import annotations

from pathlib import Path

import pytest

from relance.runtime import training


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    files = {
        "bot/config.yml": "pipeline: []",
        "requirements/rasa.txt": "rasa==3.6.21",
        "bot/domain/core.yml": "intents: [greet]",
        "bot/data/rules.yml": "rules: []",
        "data/nlu/fr/smalltalk.yml": "nlu: []",
        "bot/components/diet_ensemble.py": "ENSEMBLE_SIZE = 'ensemble_size'",
        "relance/nlg/templates/responses.yml": "utter_greet: []",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.setattr(training, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(
        training,
        "TRAINING_INPUTS",
        (tmp_path / "bot/domain", tmp_path / "bot/data", tmp_path / "data/nlu"),
    )
    monkeypatch.setattr(training, "COMPONENTS", tmp_path / "bot/components")
    return tmp_path


def _changed(project: Path, name: str) -> bool:
    before = training.model_fingerprint(project / "bot/config.yml")
    path = project / name
    path.write_text(path.read_text(encoding="utf-8") + "\n# edited", encoding="utf-8")
    return training.model_fingerprint(project / "bot/config.yml") != before


@pytest.mark.parametrize(
    "name",
    [
        "bot/config.yml",
        "requirements/rasa.txt",
        "bot/domain/core.yml",
        "bot/data/rules.yml",
        "data/nlu/fr/smalltalk.yml",
        "bot/components/diet_ensemble.py",
    ],
)
def test_a_change_to_what_shapes_the_model_retrains(project: Path, name: str) -> None:
    assert _changed(project, name)


def test_a_wording_change_does_not_retrain(project: Path) -> None:
    assert not _changed(project, "relance/nlg/templates/responses.yml")
