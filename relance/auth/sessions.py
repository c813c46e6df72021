"""Signed session cookies (itsdangerous) carrying the user id and the session's CSRF token.

The cookie holds no secret beyond the signature: the user row is re-read on every request, so a
deactivated user or a changed password ends the session at once (the payload pins a fingerprint
of the password hash).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal, TypedDict

from itsdangerous import BadSignature, URLSafeTimedSerializer

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


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=_SALT)


def password_fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def new_session(user_id: int, password_hash: str) -> SessionData:
    return SessionData(user_id, secrets.token_urlsafe(32), password_fingerprint(password_hash))


def dump_session(settings: Settings, data: SessionData) -> str:
    return _serializer(settings).dumps({"u": data.user_id, "c": data.csrf, "f": data.fingerprint})


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
        return SessionData(int(raw["u"]), str(raw["c"]), str(raw["f"]))
    except (KeyError, TypeError, ValueError):
        return None


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
