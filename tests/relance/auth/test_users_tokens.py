"""Users (create, authenticate, throttle) and API tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.auth import ratelimit, tokens, users
from relance.db.models import ApiToken, AuditEvent, LoginThrottle
from relance.errors import Conflict, InvalidContent


def test_create_user_normalises_and_audits(db: Session) -> None:
    user = users.create_user(db, "  Claire@Example.TEST ", "a good long password", role="admin")
    assert user.email == "claire@example.test" and user.role == "admin" and user.active
    assert user.password_hash.startswith("$argon2id$")
    assert users.find_user(db, "CLAIRE@example.test") is user
    assert (
        db.scalars(select(AuditEvent.action).where(AuditEvent.entity_id == str(user.id))).first()
        == "user.created"
    )


@pytest.mark.parametrize(
    ("email", "password", "role", "problem", "code"),
    [
        ("not-an-email", "a good long password", "collector", "e-mail", "invalid_email"),
        ("x@example.test", "short", "collector", "at least", "weak_password"),
        ("x@example.test", "a good long password", "boss", "role", "unknown_role"),
    ],
)
def test_create_user_refuses_bad_input(
    db: Session, email: str, password: str, role: str, problem: str, code: str
) -> None:
    with pytest.raises(InvalidContent, match=problem) as refused:
        users.create_user(db, email, password, role=role)
    assert refused.value.code == code
    assert users.find_user(db, email) is None


def test_duplicate_email_is_refused(db: Session) -> None:
    users.create_user(db, "dup@example.test", "a good long password")
    with pytest.raises(Conflict, match="already exists") as refused:
        users.create_user(db, "DUP@example.test", "another long password")
    assert refused.value.code == "email_taken"


def test_a_weak_password_or_unknown_role_changes_nothing(db: Session) -> None:
    user = users.create_user(db, "keep@example.test", "a good long password")
    before = user.password_hash
    with pytest.raises(InvalidContent) as weak:
        users.set_password(db, user, "short")
    with pytest.raises(InvalidContent) as role:
        users.set_role(db, user, "root")
    assert (weak.value.code, role.value.code) == ("weak_password", "unknown_role")
    assert user.password_hash == before and user.role == "collector"


def test_authenticate_and_throttle(db: Session) -> None:
    user = users.create_user(db, "t@example.test", "a good long password")
    assert users.authenticate(db, "t@example.test", "a good long password", "10.0.0.1").user is user
    for _ in range(ratelimit.MAX_FAILURES):
        assert users.authenticate(db, "t@example.test", "wrong", "10.0.0.1").user is None
    blocked = users.authenticate(db, "t@example.test", "a good long password", "10.0.0.1")
    assert blocked.throttled and blocked.user is None
    # Another IP waits out the account's backoff, then gets in; the first IP stays blocked.
    # The failures are stored under a hash, not the raw address.
    other = users.authenticate(db, "t@example.test", "a good long password", "10.0.0.2")
    assert other.throttled and 0 < other.retry_after_seconds <= 30
    _age_account_throttle(db, ratelimit.ACCOUNT_BASE_DELAY)
    assert users.authenticate(db, "t@example.test", "a good long password", "10.0.0.2").user is user
    assert users.authenticate(db, "t@example.test", "a good long password", "10.0.0.1").throttled
    keys = set(
        db.scalars(select(AuditEvent.entity_id).where(AuditEvent.action == ratelimit.FAILED_ACTION))
    )
    assert keys == {ratelimit.attempt_key("10.0.0.1", "t@example.test")}


def test_throttle_window_expires(db: Session) -> None:
    for _ in range(ratelimit.MAX_FAILURES):
        ratelimit.record_failure(db, "10.0.0.9", "old@example.test")
    db.flush()
    assert ratelimit.retry_after(db, "10.0.0.9", "old@example.test") > timedelta(0)
    for event in db.scalars(select(AuditEvent).where(AuditEvent.action == ratelimit.FAILED_ACTION)):
        event.at = event.at - ratelimit.WINDOW - timedelta(minutes=1)
    _age_account_throttle(db, ratelimit.WINDOW + timedelta(minutes=1))
    assert ratelimit.retry_after(db, "10.0.0.9", "old@example.test") == timedelta(0)


def _age_account_throttle(db: Session, by: timedelta) -> None:
    """As if `by` had passed since the accounts' last failures."""
    for row in db.scalars(select(LoginThrottle)):
        row.last_failure_at = row.last_failure_at - by
    db.flush()


def test_api_token_lifecycle(db: Session) -> None:
    row, plaintext = tokens.create_token(db, "erp-sync")
    assert plaintext.startswith(tokens.TOKEN_PREFIX)
    stored = db.get(ApiToken, row.id)
    assert stored is not None and stored.token_hash == tokens.hash_token(plaintext)
    assert plaintext not in stored.token_hash
    assert tokens.verify_token(db, plaintext) is row
    assert tokens.verify_token(db, plaintext + "x") is None
    assert tokens.verify_token(db, "Bearer " + plaintext) is None
    assert tokens.verify_token(db, None) is None
    assert tokens.revoke_token(db, row.id)
    assert tokens.verify_token(db, plaintext) is None
    assert not tokens.revoke_token(db, row.id)


def test_token_of_a_deactivated_user_stops_working(db: Session) -> None:
    user = users.create_user(db, "api@example.test", "a good long password")
    _row, plaintext = tokens.create_token(db, "personal", user=user)
    assert tokens.verify_token(db, plaintext) is not None
    users.set_active(db, user, False)
    db.flush()
    assert tokens.verify_token(db, plaintext) is None
