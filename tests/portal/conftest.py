"""Portal fixtures: a debtor with a postcode, open invoices, a personal link, a signed-in client."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from relance.db.models import Debtor, Invoice
from relance.portal.access import issue_access
from tests.factories import make_debtor, make_invoice
from tests.support.payment_fixtures import (  # noqa: F401  (fixtures)
    gateway,
    sandbox_payments,
)

POSTCODE = "75011"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Portal:
    debtor: Debtor
    invoices: list[Invoice]
    path: str  # /portal/<token>
    token: str


def make_portal(
    db: Session,
    *,
    language: str = "fr",
    segment: str = "consumer",
    amounts: tuple[int, ...] = (12000, 30000),
    days_late: int = 20,
) -> Portal:
    debtor = make_debtor(
        db, language=language, segment=segment, postcode=POSTCODE, channels=("sms",)
    )
    due = date.today() - timedelta(days=days_late)
    invoices = [make_invoice(db, debtor, amount, due=due) for amount in amounts]
    _, url = issue_access(db, debtor)
    db.flush()
    path = url.removeprefix("http://testserver")
    return Portal(debtor, invoices, path, path.rsplit("/", 1)[-1])


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(client: TestClient, portal: Portal, answer: str = POSTCODE) -> str:
    """Pass the identity check through the link; returns the CSRF token of the session."""
    page = client.get(portal.path)
    assert page.status_code == 200
    response = client.post(
        f"{portal.path}/identity",
        data={"answer": answer, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    home = client.get(portal.path)
    assert home.status_code == 200
    return csrf_of(home.text)


@pytest.fixture
def portal(db: Session) -> Portal:
    return make_portal(db)
