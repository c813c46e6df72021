"""Login and logout. The login form has its own double-submit CSRF token (there is no session yet)."""

from __future__ import annotations

import secrets
from math import ceil
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from console.web import PREFIX, ConsoleRoute, redirect, render
from relance import audit
from relance.auth import users
from relance.auth.deps import CsrfChecked, CurrentSession, CurrentUser, actor_of
from relance.auth.sessions import (
    COOKIE_NAME,
    cookie_options,
    csrf_matches,
    dump_session,
    end_session,
    start_session,
)
from relance.web.client_ip import client_ip
from relance.web.deps import AppSettings, DbSession

router = APIRouter(route_class=ConsoleRoute)
LOGIN_COOKIE = "relance_login_csrf"


def _safe_next(target: str | None) -> str:
    """Only local console paths: never an open redirect."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//"):
        return target
    return PREFIX + "/"


def _login_page(
    request: Request,
    settings: AppSettings,
    *,
    error: str | None = None,
    email: str = "",
    next_url: str = "",
    status_code: int = 200,
) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        {"login_csrf": token, "error": error, "email": email, "next": next_url},
        status_code=status_code,
    )
    options = cookie_options(settings)
    options["max_age"] = 3600
    response.set_cookie(LOGIN_COOKIE, token, **options)
    return response


@router.get("/login", name="login")
def login_form(request: Request, settings: AppSettings, next: str = "") -> Response:
    return _login_page(request, settings, next_url=next)


@router.post("/login")
def login(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    login_csrf: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    if not csrf_matches(request.cookies.get(LOGIN_COOKIE, ""), login_csrf):
        return _login_page(
            request,
            settings,
            error="Your login form expired. Please try again.",
            email=email,
            next_url=next,
            status_code=403,
        )
    ip = client_ip(request, settings)
    result = users.authenticate(db, email, password, ip)
    if result.throttled:
        minutes = max(1, ceil(result.retry_after_seconds / 60))
        wait = f"Wait {minutes} minute{'s' if minutes > 1 else ''} before trying again."
        page = _login_page(
            request,
            settings,
            email=email,
            next_url=next,
            status_code=429,
            error=(
                f"Too many failed sign-ins from your network, on any account. {wait}"
                if result.address_limited
                else f"Too many failed attempts. {wait}"
            ),
        )
        page.headers["Retry-After"] = str(result.retry_after_seconds)
        return page
    if result.user is None:
        return _login_page(
            request,
            settings,
            email=email,
            next_url=next,
            status_code=401,
            error="Wrong e-mail or password.",
        )
    session = start_session(db, result.user.id, result.user.password_hash)
    response = redirect(request, _safe_next(next))
    response.set_cookie(COOKIE_NAME, dump_session(settings, session), **cookie_options(settings))
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request, db: DbSession, user: CurrentUser, data: CurrentSession) -> Response:
    """Ends the session on the server too: the cookie, if kept or copied, no longer works."""
    end_session(db, data, "logout")
    audit.record(db, actor=actor_of(user), action="auth.logout", entity=user)
    response = redirect(request, PREFIX + "/login")
    response.delete_cookie(COOKIE_NAME, path="/")
    return response
