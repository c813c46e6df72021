"""Issue 17.6: sessions end on the server, and the login throttle cannot be dodged.

Each test performs the attack: replaying a cookie kept from before logout, rotating a forged
`X-Forwarded-For` to reset the throttle, guessing one account's password from many addresses.
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.auth import ratelimit, users
from relance.auth.sessions import COOKIE_NAME
from relance.db.models import ConsoleSession, LoginThrottle, User
from relance.settings import Settings, get_settings
from relance.web.client_ip import client_ip
from tests.console.conftest import csrf_of, login
from tests.factories import PASSWORD, make_handed_off_case


def _age_throttles(db: Session, by: timedelta) -> None:
    for row in db.scalars(select(LoginThrottle)):
        row.last_failure_at = row.last_failure_at - by
    db.flush()


# --- server-side sessions ----------------------------------------------------------------------


def test_old_cookie_replayed_after_logout_reads_and_changes_nothing(
    as_collector: TestClient, db: Session, gateway
) -> None:
    _debtor, conv, _handoff = make_handed_off_case(db, text="Mon secret bancaire")
    stolen = as_collector.cookies.get(COOKIE_NAME)
    csrf = csrf_of(as_collector)
    assert (
        "Mon secret bancaire"
        in as_collector.get(f"/console/conversations/{conv.id}/transcript").text
    )
    logout = as_collector.post("/console/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert logout.status_code == 303

    # The attacker kept a copy of the cookie (and the page's CSRF token).
    as_collector.cookies.set(COOKIE_NAME, stolen)
    read = as_collector.get(f"/console/conversations/{conv.id}/transcript", follow_redirects=False)
    assert read.status_code == 303 and read.headers["location"].startswith("/console/login")
    assert "Mon secret bancaire" not in read.text
    take = as_collector.post(
        f"/console/conversations/{conv.id}/take-over",
        headers={"X-CSRF-Token": csrf},
        follow_redirects=False,
    )
    assert take.status_code == 303 and take.headers["location"].startswith("/console/login")
    db.refresh(conv)
    assert conv.mode == "bot"
    row = db.scalars(select(ConsoleSession)).one()
    assert row.ended_at is not None and row.ended_reason == "logout"


def test_a_new_login_is_a_new_session_and_the_old_one_stays_dead(
    client: TestClient, db: Session, collector: User
) -> None:
    assert login(client, collector.email).status_code == 303
    old = client.cookies.get(COOKIE_NAME)
    client.post("/console/logout", data={"csrf_token": csrf_of(client)})
    assert login(client, collector.email).status_code == 303
    assert client.get("/console/").status_code == 200
    client.cookies.set(COOKIE_NAME, old)
    assert client.get("/console/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("change", ["password", "deactivated"])
def test_password_change_and_deactivation_end_every_session_server_side(
    client: TestClient, db: Session, collector: User, change: str
) -> None:
    assert login(client, collector.email).status_code == 303
    assert client.get("/console/").status_code == 200
    if change == "password":
        users.set_password(db, collector, "a brand new password")
    else:
        users.set_active(db, collector, False)
    db.flush()
    assert client.get("/console/", follow_redirects=False).status_code == 303
    rows = list(db.scalars(select(ConsoleSession).where(ConsoleSession.user_id == collector.id)))
    assert rows and all(r.ended_reason == change for r in rows)


def test_a_session_row_that_expired_on_the_server_is_refused(
    as_collector: TestClient, db: Session
) -> None:
    row = db.scalars(select(ConsoleSession)).one()
    row.expires_at = row.expires_at - timedelta(hours=13)
    db.flush()
    assert as_collector.get("/console/", follow_redirects=False).status_code == 303


# --- forwarded headers -------------------------------------------------------------------------


@pytest.fixture
def local_peer(client: TestClient) -> TestClient:
    """A client whose TCP peer is 127.0.0.1, like a local proxy or an SSH tunnel."""
    return TestClient(client.app, client=("127.0.0.1", 50000), raise_server_exceptions=False)


def test_forged_x_forwarded_for_from_a_peer_not_configured_does_not_reset_the_throttle(
    local_peer: TestClient, collector: User
) -> None:
    for n in range(ratelimit.MAX_FAILURES):
        local_peer.headers["X-Forwarded-For"] = f"198.51.100.{n}"
        assert login(local_peer, collector.email, "wrong password!").status_code == 401
    local_peer.headers["X-Forwarded-For"] = "203.0.113.77"
    blocked = login(local_peer, collector.email)
    assert blocked.status_code == 429
    assert "Too many failed attempts" in blocked.text
    assert int(blocked.headers["Retry-After"]) > 0


def _request(peer: str, forwarded: str | None) -> SimpleNamespace:
    headers = {"x-forwarded-for": forwarded} if forwarded else {}
    return SimpleNamespace(
        client=SimpleNamespace(host=peer),
        headers=SimpleNamespace(getlist=lambda name: [headers[name]] if name in headers else []),
    )


def _settings(monkeypatch: pytest.MonkeyPatch, proxies: str) -> Settings:
    monkeypatch.setenv("TRUSTED_PROXIES", proxies)
    get_settings.cache_clear()
    return get_settings()


def test_client_ip_ignores_forwarded_for_by_default(settings: Settings) -> None:
    assert settings.trusted_proxies == []
    assert client_ip(_request("127.0.0.1", "203.0.113.9"), settings) == "127.0.0.1"  # type: ignore[arg-type]


def test_client_ip_believes_only_configured_proxies(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured = _settings(monkeypatch, '["10.0.0.0/8"]')
    # From the proxy: the right-most address that is not a proxy (the client forged the left).
    chain = "1.2.3.4, 203.0.113.9, 10.1.2.3"
    assert client_ip(_request("10.0.0.5", chain), configured) == "203.0.113.9"  # type: ignore[arg-type]
    # From anyone else, even loopback: the header is ignored.
    assert client_ip(_request("127.0.0.1", chain), configured) == "127.0.0.1"  # type: ignore[arg-type]
    assert client_ip(_request("192.0.2.1", "10.0.0.1"), configured) == "192.0.2.1"  # type: ignore[arg-type]


def test_behind_a_configured_proxy_each_client_has_its_own_throttle(
    local_peer: TestClient,
    collector: User,
    admin: User,
    monkeypatch: pytest.MonkeyPatch,
    db: Session,
) -> None:
    _settings(monkeypatch, '["127.0.0.1"]')
    local_peer.headers["X-Forwarded-For"] = "198.51.100.1"
    for _ in range(ratelimit.MAX_FAILURES):
        assert login(local_peer, collector.email, "wrong password!").status_code == 401
    assert login(local_peer, collector.email).status_code == 429
    # A colleague behind the same proxy signs in to her own account at once ...
    local_peer.headers["X-Forwarded-For"] = "198.51.100.2"
    assert login(local_peer, admin.email).status_code == 303
    # ... and the owner of the attacked account, from her own address, after the short backoff.
    local_peer.cookies.clear()
    _age_throttles(db, ratelimit.ACCOUNT_BASE_DELAY)
    assert login(local_peer, collector.email).status_code == 303


# --- per-account backoff -----------------------------------------------------------------------


def test_guessing_one_account_from_many_addresses_meets_a_growing_backoff(
    db: Session, collector: User
) -> None:
    guesses = iter(range(1000))

    def attempt(password: str = "wrong guess!") -> users.LoginResult:
        return users.authenticate(db, collector.email, password, f"192.0.2.{next(guesses)}")

    for _ in range(ratelimit.ACCOUNT_FREE_FAILURES):
        assert attempt().user is None
    # Every address is fresh, yet the account now makes the next guess wait, and the wait
    # doubles: 30 s, 60 s, 120 s ... at most 15 minutes.
    waits = []
    for _ in range(8):
        refused = attempt(PASSWORD)  # even the right password is not checked while waiting
        assert refused.throttled and refused.user is None
        waits.append(refused.retry_after_seconds)
        _age_throttles(db, timedelta(seconds=refused.retry_after_seconds))
        wrong = attempt()  # after the wait one more guess is checked, and it counts
        assert wrong.user is None and not wrong.throttled
    assert waits[:3] == [30, 60, 120]
    assert max(waits) == ratelimit.ACCOUNT_MAX_DELAY.total_seconds()
    assert waits == sorted(waits)


def test_right_password_after_the_backoff_clears_the_account_counter(
    db: Session, collector: User
) -> None:
    for n in range(ratelimit.ACCOUNT_FREE_FAILURES + 2):
        users.authenticate(db, collector.email, "wrong guess!", f"192.0.2.{n}")
        _age_throttles(db, ratelimit.ACCOUNT_MAX_DELAY)
    assert users.authenticate(db, collector.email, PASSWORD, "198.51.100.9").user is collector
    assert db.get(LoginThrottle, ratelimit.account_key(collector.email)) is None


def test_unknown_accounts_get_the_same_backoff(db: Session) -> None:
    for n in range(ratelimit.ACCOUNT_FREE_FAILURES):
        users.authenticate(db, "nobody@example.test", "guess", f"192.0.2.{n}")
    assert users.authenticate(db, "nobody@example.test", "guess", "192.0.2.99").throttled
