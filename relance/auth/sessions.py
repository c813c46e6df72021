"""Signed session cookies (itsdangerous) carrying the user id, the session's CSRF token and the
id of a server-side session record.

A signature alone cannot be taken back: a cookie copied before logout stayed good for its 12 h.
So every session also has a `console_sessions` row (only the SHA-256 of its random id is
stored), checked on every request; logout, a password change and a deactivation end the rows.
The user row is re-read on every request too, and the payload pins a fingerprint of the
password hash, so a password changed directly in the database also ends the session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, TypedDict

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from relance.db.base import utcnow
from relance.db.models import ConsoleSession
from relance.db.session import rowcount
from relance.settings import Settings

COOKIE_NAME = "relance_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_MAX_AGE_SECONDS = 12 * 3600
_SALT = "relance.console.session"


@dataclass(frozen=True)
class SessionData:
    user_id: int
    csrf: str
    fingerprint: str
    sid: str = ""  # the server-side record's random id (its SHA-256 is stored)


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=_SALT)


def password_fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def new_session(user_id: int, password_hash: str) -> SessionData:
    return SessionData(
        user_id,
        secrets.token_urlsafe(32),
        password_fingerprint(password_hash),
        secrets.token_urlsafe(32),
    )


def dump_session(settings: Settings, data: SessionData) -> str:
    return _serializer(settings).dumps(
        {"u": data.user_id, "c": data.csrf, "f": data.fingerprint, "s": data.sid}
    )


def load_session(settings: Settings, cookie: str | None) -> SessionData | None:
    """The session in a cookie, or None when missing, tampered with or expired."""
    if not cookie:
        return None
    try:
        raw = _serializer(settings).loads(cookie, max_age=SESSION_MAX_AGE_SECONDS)
    except BadSignature:
        return None
    if not isinstance(raw, dict):
        return None
    try:
        data = SessionData(int(raw["u"]), str(raw["c"]), str(raw["f"]), str(raw["s"]))
    except (KeyError, TypeError, ValueError):
        return None
    return data if data.sid else None


def _sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def start_session(db: Session, user_id: int, password_hash: str) -> SessionData:
    """A new session and its server-side record (the caller commits). The user's expired
    records are pruned on the way."""
    now = utcnow()
    db.execute(
        delete(ConsoleSession).where(
            ConsoleSession.user_id == user_id, ConsoleSession.expires_at < now
        )
    )
    data = new_session(user_id, password_hash)
    db.add(
        ConsoleSession(
            token_hash=_sid_hash(data.sid),
            user_id=user_id,
            created_at=now,
            expires_at=now + timedelta(seconds=SESSION_MAX_AGE_SECONDS),
        )
    )
    db.flush()
    return data


def session_is_live(db: Session, data: SessionData) -> bool:
    """The record exists, belongs to this user, is not ended and not expired."""
    row = db.scalars(
        select(ConsoleSession).where(ConsoleSession.token_hash == _sid_hash(data.sid))
    ).first()
    return (
        row is not None
        and row.user_id == data.user_id
        and row.ended_at is None
        and row.expires_at > utcnow()
    )


def end_session(db: Session, data: SessionData, reason: str) -> None:
    db.execute(
        update(ConsoleSession)
        .where(ConsoleSession.token_hash == _sid_hash(data.sid), ConsoleSession.ended_at.is_(None))
        .values(ended_at=utcnow(), ended_reason=reason)
    )


def end_user_sessions(db: Session, user_id: int, reason: str) -> int:
    """End every live session of the user (password change, deactivation); returns how many."""
    return rowcount(
        db,
        update(ConsoleSession)
        .where(ConsoleSession.user_id == user_id, ConsoleSession.ended_at.is_(None))
        .values(ended_at=utcnow(), ended_reason=reason),
    )


class CookieOptions(TypedDict):
    """Keyword arguments of `Response.set_cookie`, typed so that a misspelt one is caught."""

    httponly: bool
    samesite: Literal["lax", "strict", "none"]
    secure: bool
    max_age: int
    path: str


def cookie_options(settings: Settings) -> CookieOptions:
    """HttpOnly, SameSite=Lax, Secure whenever the public URL is https."""
    return {
        "httponly": True,
        "samesite": "lax",
        "secure": settings.public_base_url.startswith("https://"),
        "max_age": SESSION_MAX_AGE_SECONDS,
        "path": "/",
    }


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
