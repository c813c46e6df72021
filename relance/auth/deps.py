"""Request dependencies: the signed-in user, role checks and CSRF verification.

They raise `NotAuthenticated` / `Forbidden`; the console turns these into a redirect to the login
page or a 403 page, the JSON API into 401/403 bodies.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from relance.auth.sessions import (
    COOKIE_NAME,
    CSRF_FIELD,
    CSRF_HEADER,
    SessionData,
    csrf_matches,
    load_session,
    password_fingerprint,
    session_is_live,
)
from relance.db.models import User
from relance.db.models.enums import Role
from relance.web.deps import AppSettings, DbSession


class NotAuthenticated(Exception):
    """No valid session: send the browser to the login page."""


class Forbidden(Exception):
    """Signed in, but the role does not allow this page or action."""


class CsrfRejected(Exception):
    """A state-changing request without the session's CSRF token."""


def current_session(request: Request, settings: AppSettings) -> SessionData:
    data = load_session(settings, request.cookies.get(COOKIE_NAME))
    if data is None:
        raise NotAuthenticated
    return data


def current_user(
    db: DbSession, data: Annotated[SessionData, Depends(current_session)], request: Request
) -> User:
    user = db.get(User, data.user_id)
    if (
        user is None
        or not user.active
        or password_fingerprint(user.password_hash) != data.fingerprint
    ):
        raise NotAuthenticated
    if not session_is_live(db, data):  # logged out, or ended by a password change
        raise NotAuthenticated
    request.state.user = user
    request.state.csrf_token = data.csrf
    return user


def require_admin(user: Annotated[User, Depends(current_user)]) -> User:
    if user.role != Role.ADMIN:
        raise Forbidden
    return user


async def verify_csrf(
    request: Request, data: Annotated[SessionData, Depends(current_session)]
) -> None:
    """Every POST carries the token: form field for plain forms, header for HTMX requests."""
    given = request.headers.get(CSRF_HEADER)
    if not given:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not csrf_matches(data.csrf, given):
        raise CsrfRejected


CurrentSession = Annotated[SessionData, Depends(current_session)]
CurrentUser = Annotated[User, Depends(current_user)]
AdminUser = Annotated[User, Depends(require_admin)]
CsrfChecked = Depends(verify_csrf)


def actor_of(user: User) -> str:
    """How a console user appears in the audit trail."""
    return f"user:{user.email}"
