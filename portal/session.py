"""The portal's browser session: a signed cookie (itsdangerous) scoped to `/portal`.

It names the portal link it was opened with, the link's `session_epoch` (a revocation bumps it,
ending every session at once), whether the identity check passed, and a CSRF token that every
form posts back (double submit: the form field must equal the signed cookie's value, which a
third-party site can neither read nor forge). It lives one hour; the identity check is asked
again after that.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, replace

from itsdangerous import BadSignature, URLSafeTimedSerializer

from relance.settings import Settings

COOKIE_NAME = "relance_portal"
COOKIE_PATH = "/portal"
CSRF_FIELD = "csrf_token"
MAX_AGE_SECONDS = 3600
_SALT = "relance.portal.session"


@dataclass(frozen=True)
class PortalSession:
    access_id: int  # 0: not bound to a link yet (the sign-in page)
    epoch: int
    verified: bool
    csrf: str
    language: str | None = None


def fresh(access_id: int = 0, epoch: int = 0, language: str | None = None) -> PortalSession:
    return PortalSession(access_id, epoch, False, secrets.token_urlsafe(32), language)


def verified(data: PortalSession, access_id: int, epoch: int) -> PortalSession:
    """After the identity check: a new CSRF token too (no token chosen before sign-in survives)."""
    return replace(
        data, access_id=access_id, epoch=epoch, verified=True, csrf=secrets.token_urlsafe(32)
    )


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=_SALT)


def dump(settings: Settings, data: PortalSession) -> str:
    return _serializer(settings).dumps(
        {
            "a": data.access_id,
            "e": data.epoch,
            "v": data.verified,
            "c": data.csrf,
            "l": data.language,
        }
    )


def load(settings: Settings, cookie: str | None) -> PortalSession | None:
    if not cookie:
        return None
    try:
        raw = _serializer(settings).loads(cookie, max_age=MAX_AGE_SECONDS)
    except BadSignature:
        return None
    if not isinstance(raw, dict):
        return None
    try:
        language = raw.get("l")
        return PortalSession(
            int(raw["a"]),
            int(raw["e"]),
            bool(raw["v"]),
            str(raw["c"]),
            str(language) if language else None,
        )
    except (KeyError, TypeError, ValueError):
        return None


def csrf_matches(data: PortalSession | None, given: str | None) -> bool:
    return (
        data is not None
        and bool(given)
        and hmac.compare_digest(data.csrf.encode(), (given or "").encode())
    )
