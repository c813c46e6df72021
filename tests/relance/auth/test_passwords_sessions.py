"""Password hashing and the signed session cookie."""

from __future__ import annotations

import pytest

from relance.auth import passwords, sessions
from relance.errors import InvalidContent
from relance.settings import Settings


def test_argon2id_hash_verifies_only_the_right_password() -> None:
    hashed = passwords.hash_password("long enough secret")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify_password(hashed, "long enough secret")
    assert not passwords.verify_password(hashed, "long enough secreT")
    assert not passwords.verify_password("not-a-hash", "long enough secret")
    assert not passwords.needs_rehash(hashed)


def test_short_passwords_are_refused() -> None:
    with pytest.raises(InvalidContent) as refused:
        passwords.hash_password("short")
    assert refused.value.code == "weak_password"


def test_session_round_trip_and_tampering(settings: Settings) -> None:
    data = sessions.new_session(7, "$argon2id$fake")
    cookie = sessions.dump_session(settings, data)
    assert sessions.load_session(settings, cookie) == data
    assert sessions.load_session(settings, cookie + "x") is None
    assert sessions.load_session(settings, None) is None
    other = Settings(secret_key="another-secret", environment="test")
    assert sessions.load_session(other, cookie) is None  # signed with the app's key


def test_expired_session_is_refused(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    cookie = sessions.dump_session(settings, sessions.new_session(1, "h"))
    monkeypatch.setattr(sessions, "SESSION_MAX_AGE_SECONDS", -1)
    assert sessions.load_session(settings, cookie) is None


def test_cookie_options(settings: Settings) -> None:
    options = sessions.cookie_options(settings)
    assert options["httponly"] is True and options["samesite"] == "lax"
    assert options["secure"] is False
    https = Settings(public_base_url="https://relance.example", environment="test")
    assert sessions.cookie_options(https)["secure"] is True


def test_csrf_comparison() -> None:
    assert sessions.csrf_matches("abc", "abc")
    assert not sessions.csrf_matches("abc", "abd")
    assert not sessions.csrf_matches("abc", None)
    assert not sessions.csrf_matches("abc", "")
