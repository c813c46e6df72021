"""The portal's limit per client address: one client trying a few postcodes on every customer
number (each number and each debtor under its own limit) is stopped after
`PORTAL_ADDRESS_MAX_FAILURES` failures, on the sign-in form and on the links' identity question.

Each HTTP test performs the attack from one address and checks that the refusal gives nothing
away (same page whether the number exists), checks nothing (not even the right answer), is in
the audit trail without the address, and stops nobody else.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance.db.models import AuditEvent
from relance.errors import TooManyRequests
from relance.portal import access as portal_access
from relance.portal import client_limit
from relance.portal.models import PortalAccess
from relance.settings import get_settings
from tests.factories import make_debtor
from tests.portal.conftest import POSTCODE, Portal, csrf_of, make_portal

ATTACKER = "203.0.113.7"
SOMEONE_ELSE = "198.51.100.20"
NOW = "2026-11-23 08:00:00"

Client = Callable[[str], TestClient]


@pytest.fixture
def from_address(client: TestClient) -> Client:
    """A browser whose TCP peer is the given address (the app's own client shares the app)."""

    def make(address: str) -> TestClient:
        return TestClient(client.app, client=(address, 50000), raise_server_exceptions=False)

    return make


def _count(db: Session, action: str) -> int:
    return db.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == action)) or 0


def _sign_in(browser: TestClient, customer_number: str, answer: str, lang: str = "fr"):  # type: ignore[no-untyped-def]
    csrf = csrf_of(browser.get(f"/portal?lang={lang}").text)
    return browser.post(
        f"/portal?lang={lang}",
        data={"customer_number": customer_number, "answer": answer, "csrf_token": csrf},
        follow_redirects=False,
    )


def _spend_the_limit(browser: TestClient, numbers: list[str]) -> None:
    """One wrong postcode on each number: no number and no debtor gets near its own lock."""
    limit = get_settings().portal_address_max_failures
    assert len(numbers) >= limit
    for number in numbers[:limit]:
        assert _sign_in(browser, number, "00000").status_code == 401


def _numbers(db: Session, known: int = 5) -> list[str]:
    """Customer numbers an attacker walks through: some of ours, then made-up ones."""
    ours = [make_debtor(db, postcode="13001").customer_number for _ in range(known)]
    return ours + [f"C-{900000 + n}" for n in range(get_settings().portal_address_max_failures)]


# --- the attack: one address, many customer numbers -----------------------------------------------


def test_one_address_walking_through_customer_numbers_is_stopped(
    db: Session, portal: Portal, from_address: Client
) -> None:
    attacker = from_address(ATTACKER)
    _spend_the_limit(attacker, _numbers(db))
    failures_checked = _count(db, portal_access.SIGN_IN_FAILED)

    # Over the limit: even the right number and postcode open nothing from this address ...
    right = _sign_in(attacker, portal.debtor.customer_number, POSTCODE)
    unknown = _sign_in(attacker, "C-31415926", POSTCODE)
    assert right.status_code == unknown.status_code == 429
    assert right.text == unknown.text  # the same page whether the number exists (no enumeration)
    assert "location" not in right.headers and portal.invoices[0].number not in right.text
    page = html.unescape(right.text)
    assert "Trop d'essais" in page and "réessayez dans 60\u00a0min" in page
    assert 3500 < int(right.headers["Retry-After"]) <= 3600
    assert right.headers["cache-control"] == "no-store"
    issued = db.scalars(select(PortalAccess).where(PortalAccess.debtor_id == portal.debtor.id))
    assert [a.verified_at for a in issued] == [None]  # only the fixture's link, never verified
    # ... no identity check ran (nothing counted against the numbers or the debtor) ...
    assert _count(db, portal_access.SIGN_IN_FAILED) == failures_checked
    # ... the refusals are in the audit trail, without the address.
    refusals = db.scalars(
        select(AuditEvent).where(AuditEvent.action == client_limit.THROTTLED)
    ).all()
    assert len(refusals) == 2 and {r.details["where"] for r in refusals} == {"sign_in"}
    assert all(ATTACKER not in f"{r.entity_id}{r.details}" for r in refusals)
    assert {r.entity_id for r in refusals} == {client_limit.limit(get_settings()).key(ATTACKER)}

    # Someone else signs in at once.
    other = from_address(SOMEONE_ELSE)
    ok = _sign_in(other, portal.debtor.customer_number, POSTCODE)
    assert (
        ok.status_code == 303
        and portal.invoices[0].number in other.get(ok.headers["location"]).text
    )


def test_the_refusal_is_committed_with_the_request(
    db: Session, portal: Portal, from_address: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service raises after writing the refusal; the portal renders the error inside the
    request's unit of work, which commits it (an api error handler would roll it back)."""
    attacker = from_address(ATTACKER)
    _spend_the_limit(attacker, _numbers(db))
    ends: list[tuple[str, int]] = []
    commit, rollback = Session.commit, Session.rollback

    def spy_commit(self: Session) -> None:
        ends.append(("commit", _count(self, client_limit.THROTTLED)))
        commit(self)

    def spy_rollback(self: Session) -> None:
        ends.append(("rollback", _count(self, client_limit.THROTTLED)))
        rollback(self)

    monkeypatch.setattr(Session, "commit", spy_commit)
    monkeypatch.setattr(Session, "rollback", spy_rollback)
    assert _sign_in(attacker, portal.debtor.customer_number, POSTCODE).status_code == 429
    assert ends == [("commit", 1)]


def test_the_refusal_page_is_in_english_for_an_english_visitor(
    db: Session, portal: Portal, from_address: Client
) -> None:
    attacker = from_address(ATTACKER)
    _spend_the_limit(attacker, _numbers(db))
    refused = _sign_in(attacker, portal.debtor.customer_number, POSTCODE, lang="en")
    assert refused.status_code == 429
    assert '<html lang="en">' in refused.text
    assert "Too many attempts" in refused.text and "try again in 60 min" in refused.text


def test_the_identity_question_on_links_counts_against_the_address_too(
    db: Session, from_address: Client
) -> None:
    """Links forwarded to or found by one person: each link locks after 3 wrong answers, so the
    attacker moves on to the next; the address limit stops that, right answer included."""
    limit = get_settings().portal_address_max_failures
    per_link = get_settings().identity_max_attempts
    attacker = from_address(ATTACKER)
    portals = [make_portal(db) for _ in range(-(-limit // per_link))]
    for portal in portals:
        csrf = csrf_of(attacker.get(portal.path).text)
        for n in range(per_link):
            wrong = attacker.post(
                f"{portal.path}/identity", data={"answer": f"1300{n}", "csrf_token": csrf}
            )
            assert wrong.status_code in (401, 429)
    target = make_portal(db)
    csrf = csrf_of(attacker.get(target.path).text)
    right = attacker.post(f"{target.path}/identity", data={"answer": POSTCODE, "csrf_token": csrf})

    assert right.status_code == 429 and "Trop d'essais" in html.unescape(right.text)
    assert target.invoices[0].number not in right.text
    access = portal_access.find_access(db, target.token)
    assert access is not None and access.verified_at is None and access.failed_attempts == 0
    [refusal] = db.scalars(
        select(AuditEvent).where(
            AuditEvent.action == client_limit.THROTTLED,
            AuditEvent.debtor_id == target.debtor.id,
        )
    )
    assert refusal.debtor_id == target.debtor.id and refusal.details["where"] == "link"
    # The debtor, from their own connection, passes.
    debtor = from_address(SOMEONE_ELSE)
    csrf = csrf_of(debtor.get(target.path).text)
    ok = debtor.post(
        f"{target.path}/identity",
        data={"answer": POSTCODE, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert ok.status_code == 303


# --- the client's address: forged headers and IPv6 ------------------------------------------------


def test_a_forged_x_forwarded_for_from_a_peer_not_trusted_does_not_reset_the_count(
    db: Session, portal: Portal, from_address: Client
) -> None:
    attacker = from_address("127.0.0.1")  # a local tunnel: not in TRUSTED_PROXIES (empty)
    numbers = _numbers(db)
    for n, number in enumerate(numbers[: get_settings().portal_address_max_failures]):
        attacker.headers["X-Forwarded-For"] = f"192.0.2.{n + 1}"
        assert _sign_in(attacker, number, "00000").status_code == 401
    attacker.headers["X-Forwarded-For"] = "192.0.2.200"
    assert _sign_in(attacker, portal.debtor.customer_number, POSTCODE).status_code == 429


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_count(
    db: Session, portal: Portal, from_address: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", '["10.0.0.0/8"]')
    get_settings.cache_clear()
    proxy = from_address("10.0.0.5")
    proxy.headers["X-Forwarded-For"] = ATTACKER
    _spend_the_limit(proxy, _numbers(db))
    assert _sign_in(proxy, portal.debtor.customer_number, POSTCODE).status_code == 429
    # The left-most hop is the client's to forge: the proxy's own entry (right-most) counts.
    proxy.headers["X-Forwarded-For"] = f"192.0.2.9, {ATTACKER}"
    assert _sign_in(proxy, portal.debtor.customer_number, POSTCODE).status_code == 429
    proxy.headers["X-Forwarded-For"] = SOMEONE_ELSE
    assert _sign_in(proxy, portal.debtor.customer_number, POSTCODE).status_code == 303


def test_ipv6_addresses_of_one_64_share_the_count(
    db: Session, portal: Portal, from_address: Client
) -> None:
    numbers = _numbers(db)
    for n, number in enumerate(numbers[: get_settings().portal_address_max_failures]):
        rotating = from_address(f"2001:db8:1:2::{n + 1:x}")  # a fresh address of the same /64
        assert _sign_in(rotating, number, "00000").status_code == 401
    same_64 = from_address("2001:db8:1:2:ffff:ffff:ffff:fffe")
    assert _sign_in(same_64, portal.debtor.customer_number, POSTCODE).status_code == 429
    next_64 = from_address("2001:db8:1:3::1")
    assert _sign_in(next_64, portal.debtor.customer_number, POSTCODE).status_code == 303


# --- the sliding window -----------------------------------------------------------------------


def test_the_window_slides_and_then_expires(db: Session) -> None:
    """Half the failures at 08:00, half at 08:30: refused until 09:00, when the first half ages
    out and leaves room for as many again; the refusal says when that is."""
    debtor = make_debtor(db, postcode="69003")
    limit = get_settings().portal_address_max_failures
    half = limit // 2

    def sign_in(answer: str, number: str = debtor.customer_number) -> object:
        return portal_access.sign_in(db, number, answer, language="fr", client=ATTACKER)

    with freeze_time(NOW) as clock:
        for n in range(half):
            assert sign_in("00000", f"C-{800000 + n}") is None
        clock.tick(timedelta(minutes=30))
        for n in range(limit - half):
            assert sign_in("00000", f"C-{810000 + n}") is None
        with pytest.raises(TooManyRequests) as refused:
            sign_in("69003")
        assert refused.value.code == "too_many_attempts"
        assert refused.value.retry_after_seconds == 30 * 60  # when the 08:00 ones age out

        clock.tick(timedelta(minutes=29, seconds=59))
        with pytest.raises(TooManyRequests):
            sign_in("69003")
        clock.tick(timedelta(seconds=2))  # 09:00:01: the 08:00 failures are out of the window
        assert sign_in("00000", "C-820000") is None  # checked again (and counted)
        # room for `half` failures, one spent just now
        for n in range(half - 1):
            assert sign_in("00000", f"C-{830000 + n}") is None
        with pytest.raises(TooManyRequests):
            sign_in("69003")

        clock.tick(timedelta(hours=1, seconds=1))  # everything has aged out
        found = sign_in("69003")
    assert found is not None and found[0].debtor_id == debtor.id


def test_a_refusal_adds_no_failure_and_a_success_clears_none(db: Session) -> None:
    debtor = make_debtor(db, postcode="69003")
    limit = get_settings().portal_address_max_failures
    for n in range(limit - 1):
        portal_access.sign_in(db, f"C-{700000 + n}", "00000", language="fr", client=ATTACKER)
    found = portal_access.sign_in(
        db, debtor.customer_number, "69003", language="fr", client=ATTACKER
    )
    assert found is not None  # one failure short of the limit: checked, and right
    portal_access.sign_in(db, "C-799999", "00000", language="fr", client=ATTACKER)
    for _ in range(3):
        with pytest.raises(TooManyRequests):
            portal_access.sign_in(
                db, debtor.customer_number, "69003", language="fr", client=ATTACKER
            )
    assert _count(db, client_limit.FAILED) == limit
    assert _count(db, client_limit.THROTTLED) == 3


def test_the_limit_and_window_come_from_the_settings(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTAL_ADDRESS_MAX_FAILURES", "2")
    monkeypatch.setenv("PORTAL_ADDRESS_WINDOW_MINUTES", "5")
    get_settings.cache_clear()
    with freeze_time(NOW) as clock:
        for n in range(2):
            portal_access.sign_in(db, f"C-{600000 + n}", "00000", language="fr", client=ATTACKER)
        with pytest.raises(TooManyRequests) as refused:
            portal_access.sign_in(db, "C-600009", "00000", language="fr", client=ATTACKER)
        assert refused.value.retry_after_seconds == 5 * 60
        clock.tick(timedelta(minutes=5, seconds=1))
        assert (
            portal_access.sign_in(db, "C-600009", "00000", language="fr", client=ATTACKER) is None
        )
