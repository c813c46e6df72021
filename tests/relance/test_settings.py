"""Production refuses to start on unsafe settings; development runs on the embedded defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from relance.settings import Settings, normalise_database_url

SAFE = {
    "environment": "production",
    "database_url": "postgresql://relance@db/relance",
    "secret_key": "k" * 40,
    "twilio_auth_token": "t" * 32,
    "stripe_webhook_secret": "whsec_" + "s" * 24,
    "rasa_auth_token": "r" * 32,
    "nlg_token": "n" * 32,
}


def _settings(**overrides: object) -> Settings:
    return Settings(_env_file=None, **{**SAFE, **overrides})  # type: ignore[arg-type]


def test_a_fully_configured_production_starts() -> None:
    settings = _settings()
    assert settings.effective_database_url == "postgresql+psycopg://relance@db/relance"


def test_placeholder_secrets_are_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="secret_key"):
        _settings(secret_key="dev-secret-key-change-me")


def test_production_needs_a_database_url() -> None:
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        _settings(database_url="")


def test_unsigned_twilio_webhooks_are_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="TWILIO_VALIDATE_SIGNATURES"):
        _settings(twilio_validate_signatures=False)


def test_development_runs_on_embedded_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.effective_database_url.startswith("sqlite:///")


def test_postgres_urls_use_psycopg3() -> None:
    assert normalise_database_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
