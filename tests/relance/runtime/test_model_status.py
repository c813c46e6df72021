"""While the production model trains, /healthz and the simulator say which model answers."""

from __future__ import annotations

from fastapi.testclient import TestClient

from relance.runtime.model_status import ModelStatus, clear_status, read_status, write_status
from relance.settings import Settings


def test_no_status_without_a_launcher(client: TestClient, settings: Settings) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert 'class="model-status"' not in client.get("/simulator").text


def test_healthz_and_simulator_follow_the_background_training(
    client: TestClient, settings: Settings
) -> None:
    write_status(settings.var_dir, ModelStatus("config.ci.yml", "training", progress=0.42))
    health = client.get("/healthz").json()
    assert health["assistant_model"] == {
        "serving": "config.ci.yml",
        "production": "training",
        "progress": 0.42,
        "detail": "",
    }
    page = client.get("/simulator").text
    assert "Quick assistant model (config.ci.yml)" in page and "about 42%" in page

    write_status(settings.var_dir, ModelStatus("config.ci.yml", "failed", detail="exited with 1"))
    assert "could not be trained or loaded (exited with 1)" in client.get("/simulator").text

    write_status(settings.var_dir, ModelStatus("config.yml", "serving"))
    assert client.get("/healthz").json()["assistant_model"]["serving"] == "config.yml"
    assert 'class="model-status"' not in client.get("/simulator").text  # nothing to warn about


def test_status_round_trip_and_clear(settings: Settings) -> None:
    status = ModelStatus("config.ci.yml", "loading", progress=1.0)
    write_status(settings.var_dir, status)
    assert read_status(settings.var_dir) == status
    clear_status(settings.var_dir)
    assert read_status(settings.var_dir) is None
