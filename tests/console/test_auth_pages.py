"""Login, logout, throttling, CSRF and roles, through the real console routes."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance.auth.ratelimit import MAX_FAILURES
from relance.auth.sessions import COOKIE_NAME
from relance.db.models import AuditEvent, User
from tests.console.conftest import csrf_of, login
from tests.factories import PASSWORD, make_handed_off_case


def test_login_sets_a_hardened_session_cookie_and_opens_the_inbox(
    client: TestClient, collector: User
) -> None:
    response = login(client, collector.email)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/"
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(COOKIE_NAME))
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    assert "Secure" not in cookie  # public_base_url is http in tests
    inbox = client.get("/console/")
    assert inbox.status_code == 200
    assert "Inbox" in inbox.text and collector.display_name in inbox.text


def test_secure_flag_when_public_url_is_https(
    client: TestClient, collector: User, monkeypatch
) -> None:
    from relance.settings import get_settings

    monkeypatch.setenv("PUBLIC_BASE_URL", "https://relance.example")
    get_settings.cache_clear()
    with TestClient(client.app, base_url="https://testserver") as https_client:
        response = login(https_client, collector.email)
    assert response.status_code == 303
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(COOKIE_NAME))
    assert "Secure" in cookie


def test_wrong_password_is_refused_and_recorded(
    client: TestClient, db: Session, collector: User
) -> None:
    response = login(client, collector.email, "not the password")
    assert response.status_code == 401
    assert "Wrong e-mail or password" in response.text
    assert COOKIE_NAME not in response.cookies
    assert client.get("/console/", follow_redirects=False).status_code == 303
    failures = db.scalar(
        select(func.count(AuditEvent.id)).where(AuditEvent.action == "auth.login_failed")
    )
    assert failures == 1


def test_unknown_email_and_inactive_user_get_the_same_answer(
    client: TestClient, db: Session, collector: User
) -> None:
    assert login(client, "nobody@example.test").status_code == 401
    collector.active = False
    db.flush()
    assert login(client, collector.email).status_code == 401


def test_login_is_throttled_per_ip_and_email(client: TestClient, collector: User) -> None:
    for _ in range(MAX_FAILURES):
        assert login(client, collector.email, "wrong password!").status_code == 401
    # Even the right password is refused while the throttle holds.
    blocked = login(client, collector.email)
    assert blocked.status_code == 429
    assert "Too many failed attempts" in blocked.text


def test_throttle_does_not_block_other_accounts(
    client: TestClient, db: Session, collector: User, admin: User
) -> None:
    for _ in range(MAX_FAILURES):
        login(client, collector.email, "wrong password!")
    assert login(client, collector.email).status_code == 429
    assert login(client, admin.email).status_code == 303


def test_login_form_without_its_csrf_token_is_refused(client: TestClient, collector: User) -> None:
    client.get("/console/login")
    response = client.post(
        "/console/login",
        data={"email": collector.email, "password": PASSWORD, "login_csrf": "forged"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert COOKIE_NAME not in response.cookies


def test_post_without_csrf_token_is_rejected(
    as_collector: TestClient, db: Session, gateway
) -> None:

    _debtor, conv, _handoff = make_handed_off_case(db)
    response = as_collector.post(
        f"/console/conversations/{conv.id}/take-over", data={}, follow_redirects=False
    )
    assert response.status_code == 403
    assert conv.mode == "bot"
    forged = as_collector.post(
        f"/console/conversations/{conv.id}/take-over",
        data={"csrf_token": "x" * 43},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    db.refresh(conv)
    assert conv.mode == "bot"


def test_csrf_header_is_accepted_for_htmx_posts(as_collector: TestClient, db: Session) -> None:

    _debtor, conv, _handoff = make_handed_off_case(db)
    token = csrf_of(as_collector)
    response = as_collector.post(
        f"/console/conversations/{conv.id}/take-over",
        headers={"X-CSRF-Token": token, "HX-Request": "true"},
    )
    assert response.status_code == 204
    assert response.headers["HX-Redirect"].startswith(f"/console/conversations/{conv.id}")
    db.refresh(conv)
    assert conv.mode == "human"


def test_collector_cannot_open_admin_pages(as_collector: TestClient) -> None:
    for path in (
        "/console/admin/policy",
        "/console/admin/wording",
        "/console/admin/audit",
        "/console/admin/policy/versions",
        "/console/admin/wording/edit/utter_greet",
    ):
        response = as_collector.get(path)
        assert response.status_code == 403, path
        assert "Admins only" in response.text
    token = csrf_of(as_collector)
    post = as_collector.post(
        "/console/admin/policy/document", data={"csrf_token": token, "document": "name: x"}
    )
    assert post.status_code == 403


def test_admin_pages_need_a_session(client: TestClient) -> None:
    response = client.get("/console/admin/policy", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=/console/admin/policy"


def test_login_redirects_back_to_next_but_never_off_site(client: TestClient, admin: User) -> None:
    page = client.get("/console/login?next=/console/dashboard")
    token = page.text.split('name="login_csrf" value="')[1].split('"')[0]
    ok = client.post(
        "/console/login",
        data={
            "email": admin.email,
            "password": PASSWORD,
            "login_csrf": token,
            "next": "/console/dashboard",
        },
        follow_redirects=False,
    )
    assert ok.headers["location"] == "/console/dashboard"
    client.cookies.clear()
    page = client.get("/console/login")
    token = page.text.split('name="login_csrf" value="')[1].split('"')[0]
    evil = client.post(
        "/console/login",
        data={
            "email": admin.email,
            "password": PASSWORD,
            "login_csrf": token,
            "next": "https://evil.example/",
        },
        follow_redirects=False,
    )
    assert evil.headers["location"] == "/console/"


def test_logout_ends_the_session(as_collector: TestClient) -> None:
    token = csrf_of(as_collector)
    response = as_collector.post(
        "/console/logout", data={"csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303
    assert as_collector.get("/console/", follow_redirects=False).status_code == 303


def test_tampered_cookie_is_ignored(as_collector: TestClient) -> None:
    value = as_collector.cookies.get(COOKIE_NAME)
    as_collector.cookies.set(
        COOKIE_NAME, value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    )
    assert as_collector.get("/console/", follow_redirects=False).status_code == 303


def test_deactivated_or_repassworded_user_is_signed_out(
    as_collector: TestClient, db: Session, collector: User
) -> None:
    from relance.auth.users import set_password

    assert as_collector.get("/console/").status_code == 200
    set_password(db, collector, "a brand new password")
    db.flush()
    assert as_collector.get("/console/", follow_redirects=False).status_code == 303
