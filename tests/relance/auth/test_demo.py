"""Demo accounts for `relance run` in development, never in production."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy.orm import Session

from relance.auth import demo
from relance.auth.passwords import verify_password
from relance.auth.users import find_user
from relance.settings import get_settings


def test_demo_users_are_created_once(db: Session) -> None:
    assert demo.ensure_demo_users() == 2
    assert demo.ensure_demo_users() == 0
    logins = demo.demo_logins()
    for email, password, role in logins:
        user = find_user(db, email)
        assert user is not None and user.role == role
        assert verify_password(user.password_hash, password)
    assert len({password for _e, password, _r in logins}) == 2  # random, one per account
    assert demo.demo_logins() == logins  # stable across runs


def test_no_demo_users_in_production(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/prod")
    for name in (
        "SECRET_KEY",
        "TWILIO_AUTH_TOKEN",
        "STRIPE_WEBHOOK_SECRET",
        "RASA_AUTH_TOKEN",
        "NLG_TOKEN",
        "MAIL_INBOUND_SECRET",
    ):
        monkeypatch.setenv(name, secrets.token_urlsafe(32))  # production refuses weak ones
    get_settings.cache_clear()
    assert demo.ensure_demo_users() == 0
    assert find_user(db, demo.DEMO_ACCOUNTS[0][0]) is None
