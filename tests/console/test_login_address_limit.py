"""The console login's limit per client address: password spraying (one address, one common
password, every staff e-mail in turn) is stopped after `CONSOLE_ADDRESS_MAX_FAILURES` failures.

The per address + e-mail limit (5) and the per-account backoff never trigger in that attack:
each pair and each account sees one failure. Each HTTP test performs the attack from one address
and checks that the refusal gives nothing away (the same answer for a real account with its
right password and for an unknown e-mail), checks nothing (no lookup, no password hash), is in
the audit trail without the address, and stops nobody else.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance.auth import ratelimit, users
from relance.auth.sessions import COOKIE_NAME
from relance.db.models import AuditEvent, User
from relance.settings import get_settings
from tests.console.conftest import login
from tests.factories import PASSWORD, make_user

ATTACKER = "203.0.113.7"
COLLEAGUE = "198.51.100.20"
SPRAYED = "Printemps2026!"  # the common password tried on every account
NOW = "2026-11-23 08:00:00"
ALERT_RE = re.compile(r'<div class="alert error" role="alert">(.*?)</div>', re.S)

Client = Callable[[str], TestClient]


@pytest.fixture
def from_address(client: TestClient) -> Client:
    """A browser whose TCP peer is the given address (the app's own client shares the app)."""

    def make(address: str) -> TestClient:
        return TestClient(client.app, client=(address, 50000), raise_server_exceptions=False)

    return make


@pytest.fixture
def staff(db: Session) -> list[User]:
    return [make_user(db, role) for role in ("admin", "collector", "collector")]


def _emails(staff: list[User]) -> list[str]:
    """What a sprayer walks through: the real staff e-mails, then guessed ones."""
    limit = get_settings().console_address_max_failures
    return [u.email for u in staff] + [f"guess{n}@example.test" for n in range(limit)]


def _spray(browser: TestClient, emails: list[str]) -> None:
    """One wrong password per e-mail, up to the limit: no pair and no account gets near its own
    limit, every attempt is checked and refused as a wrong password."""
    limit = get_settings().console_address_max_failures
    assert len(emails) >= limit
    for email in emails[:limit]:
        assert login(browser, email, SPRAYED).status_code == 401


def _count(db: Session, action: str) -> int:
    return db.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == action)) or 0


def _alert(page: Any) -> str:
    match = ALERT_RE.search(page.text)
    assert match, page.text
    return html.unescape(match.group(1)).strip()


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every account lookup and password check the login makes, in order."""
    seen: list[str] = []
    find_user, verify_password = users.find_user, users.verify_password

    def spy_find(session: Session, email: str) -> User | None:
        seen.append("lookup")
        return find_user(session, email)

    def spy_verify(password_hash: str, password: str) -> bool:
        seen.append("password")
        return verify_password(password_hash, password)

    monkeypatch.setattr(users, "find_user", spy_find)
    monkeypatch.setattr(users, "verify_password", spy_verify)
    return seen


# --- the attack: one address, one password, every staff e-mail -----------------------------------


def test_one_address_spraying_a_password_over_the_staff_is_stopped(
    db: Session, staff: list[User], from_address: Client, checks: list[str]
) -> None:
    attacker = from_address(ATTACKER)
    _spray(attacker, _emails(staff))
    failures = _count(db, ratelimit.FAILED_ACTION)
    assert checks.count("password") == get_settings().console_address_max_failures
    checks.clear()

    # Over the limit: even a real account's right password opens nothing from this address ...
    right = login(attacker, staff[0].email, PASSWORD)
    unknown = login(attacker, "nobody@example.test", SPRAYED)
    assert right.status_code == unknown.status_code == 429
    assert "location" not in right.headers
    assert not any(c.startswith(f"{COOKIE_NAME}=") for c in right.headers.get_list("set-cookie"))
    # ... with the same answer whether the account exists (the page only echoes the e-mail) ...
    assert (
        _alert(right)
        == _alert(unknown)
        == (
            "Too many failed sign-ins from your network, on any account. "
            "Wait 60 minutes before trying again."
        )
    )
    assert 3500 < int(right.headers["Retry-After"]) <= 3600
    assert abs(int(right.headers["Retry-After"]) - int(unknown.headers["Retry-After"])) <= 1
    # ... and without looking anything up: no account read, no password hash computed (so no
    # timing to tell a real account), nothing counted against the pairs or the accounts.
    assert checks == []
    assert _count(db, ratelimit.FAILED_ACTION) == failures
    assert _count(db, ratelimit.ADDRESS_FAILED) == failures  # a refusal is no failure
    # The refusals are in the audit trail (committed with the 429 page), without the address.
    refusals = db.scalars(
        select(AuditEvent).where(AuditEvent.action == ratelimit.ADDRESS_THROTTLED)
    ).all()
    assert len(refusals) == 2
    assert {r.entity_id for r in refusals} == {ratelimit.per_address(get_settings()).key(ATTACKER)}
    assert all(ATTACKER not in f"{r.entity_id}{r.details}{r.actor}" for r in refusals)
    assert all(r.details["retry_after_seconds"] > 3500 for r in refusals)

    # A colleague at another address signs in at once, to an account the attacker tried.
    colleague = from_address(COLLEAGUE)
    assert login(colleague, staff[0].email).status_code == 303
    assert colleague.get("/console/", follow_redirects=False).status_code == 200


def test_a_success_from_the_address_clears_none_of_its_failures(
    db: Session, staff: list[User], from_address: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sprayer who holds one account (their own) cannot reset the count by signing in."""
    monkeypatch.setenv("CONSOLE_ADDRESS_MAX_FAILURES", "4")
    get_settings.cache_clear()
    attacker = from_address(ATTACKER)
    emails = _emails(staff)
    for email in emails[:3]:
        assert login(attacker, email, SPRAYED).status_code == 401
    own = make_user(db, "collector")
    assert login(attacker, own.email).status_code == 303  # under the limit: checked, and right
    assert login(attacker, emails[3], SPRAYED).status_code == 401
    refused = login(attacker, own.email)
    assert refused.status_code == 429 and "from your network" in _alert(refused)


def test_the_per_pair_and_per_account_limits_still_word_their_own_refusal(
    staff: list[User], from_address: Client
) -> None:
    """Five guesses at one account from one address: the pair's limit answers, as before."""
    attacker = from_address(ATTACKER)
    for _ in range(ratelimit.MAX_FAILURES):
        assert login(attacker, staff[1].email, "wrong guess!").status_code == 401
    blocked = login(attacker, staff[1].email)
    assert blocked.status_code == 429
    assert _alert(blocked) == "Too many failed attempts. Wait 15 minutes before trying again."


# --- the client's address: forged headers, proxies and IPv6 ---------------------------------------


def test_a_forged_x_forwarded_for_from_a_peer_not_trusted_does_not_reset_the_count(
    staff: list[User], from_address: Client
) -> None:
    attacker = from_address("127.0.0.1")  # a local tunnel: not in TRUSTED_PROXIES (empty)
    emails = _emails(staff)
    for n, email in enumerate(emails[: get_settings().console_address_max_failures]):
        attacker.headers["X-Forwarded-For"] = f"192.0.2.{n + 1}"
        assert login(attacker, email, SPRAYED).status_code == 401
    attacker.headers["X-Forwarded-For"] = "192.0.2.200"
    refused = login(attacker, staff[0].email)
    assert refused.status_code == 429 and "from your network" in _alert(refused)


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_count(
    staff: list[User], from_address: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", '["10.0.0.0/8"]')
    monkeypatch.setenv("CONSOLE_ADDRESS_MAX_FAILURES", "3")
    get_settings.cache_clear()
    proxy = from_address("10.0.0.5")
    proxy.headers["X-Forwarded-For"] = ATTACKER
    _spray(proxy, _emails(staff))
    assert login(proxy, staff[0].email).status_code == 429
    # The left-most hop is the client's to forge: the proxy's own entry (right-most) counts.
    proxy.headers["X-Forwarded-For"] = f"192.0.2.9, {ATTACKER}"
    assert login(proxy, staff[0].email).status_code == 429
    proxy.headers["X-Forwarded-For"] = COLLEAGUE
    assert login(proxy, staff[0].email).status_code == 303


def test_ipv6_addresses_of_one_64_share_the_count(
    staff: list[User], from_address: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSOLE_ADDRESS_MAX_FAILURES", "3")
    get_settings.cache_clear()
    for n, email in enumerate(_emails(staff)[:3]):
        rotating = from_address(f"2001:db8:1:2::{n + 1:x}")  # a fresh address of the same /64
        assert login(rotating, email, SPRAYED).status_code == 401
    assert login(from_address("2001:db8:1:2:ffff::1"), staff[0].email).status_code == 429
    assert login(from_address("2001:db8:1:3::1"), staff[0].email).status_code == 303


# --- the sliding window and the settings -----------------------------------------------------------


def test_the_window_expires(
    db: Session, staff: list[User], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failures at 08:00 and 08:20 under a 2-in-30-minutes limit: refused until 08:30, when the
    08:00 one ages out; the right password then works from the same address."""
    monkeypatch.setenv("CONSOLE_ADDRESS_MAX_FAILURES", "2")
    monkeypatch.setenv("CONSOLE_ADDRESS_WINDOW_MINUTES", "30")
    get_settings.cache_clear()
    emails = _emails(staff)
    with freeze_time(NOW) as clock:
        assert users.authenticate(db, emails[3], SPRAYED, ATTACKER).user is None
        clock.tick(timedelta(minutes=20))
        assert users.authenticate(db, emails[4], SPRAYED, ATTACKER).user is None
        refused = users.authenticate(db, staff[0].email, PASSWORD, ATTACKER)
        assert refused.throttled and refused.address_limited and refused.user is None
        assert refused.retry_after_seconds == 10 * 60  # when the 08:00 failure ages out
        clock.tick(timedelta(minutes=9, seconds=59))
        assert users.authenticate(db, staff[0].email, PASSWORD, ATTACKER).address_limited
        clock.tick(timedelta(seconds=2))  # 08:30:01
        assert users.authenticate(db, staff[0].email, PASSWORD, ATTACKER).user is staff[0]


def test_the_limit_comes_from_the_settings(
    db: Session, staff: list[User], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSOLE_ADDRESS_MAX_FAILURES", "1")
    get_settings.cache_clear()
    assert users.authenticate(db, staff[1].email, SPRAYED, ATTACKER).user is None
    refused = users.authenticate(db, staff[0].email, PASSWORD, ATTACKER)
    assert refused.address_limited and refused.retry_after_seconds == 60 * 60
    # The portal's own setting plays no part in the console's limit.
    monkeypatch.setenv("CONSOLE_ADDRESS_MAX_FAILURES", "20")
    monkeypatch.setenv("PORTAL_ADDRESS_MAX_FAILURES", "1")
    get_settings.cache_clear()
    assert users.authenticate(db, staff[0].email, PASSWORD, ATTACKER).user is staff[0]
