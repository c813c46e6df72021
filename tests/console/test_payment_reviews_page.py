"""Payments to review (issue 17.3): collectors see money that did not match its link and apply it or
close it; CSRF and audit as everywhere in the console."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from payment_links.service import create_link
from relance.db.models import AuditEvent, PaymentReview
from relance.ledger import review
from relance.ledger.service import Expected, Hold, record_payment
from tests.console.conftest import csrf_of
from tests.factories import make_debtor, make_invoice


def _held(db: Session, *, currency: str = "EUR", amount_minor: int = 4000) -> PaymentReview:
    debtor = make_debtor(db, channels=("sms",))
    make_invoice(db, debtor, 5000, due=date(2026, 3, 10))
    link, _ = create_link(db, debtor=debtor, purpose="balance")
    expected = Expected(5000, "EUR", debtor.id)
    record_payment(
        db,
        debtor_id=debtor.id,
        amount_minor=amount_minor,
        currency=currency,
        method="card",
        provider="stripe",
        provider_ref=f"pi_console_{debtor.id}",
        payment_link=link,
        recorded_by="stripe:webhook",
        hold=Hold(
            expected,
            review.mismatches(
                expected, amount_minor=amount_minor, currency=currency, debtor_id=debtor.id
            ),
        ),
    )
    return db.scalars(select(PaymentReview).where(PaymentReview.debtor_id == debtor.id)).one()


def test_collector_sees_the_queue(as_collector: TestClient, db: Session) -> None:
    held = _held(db, currency="USD", amount_minor=100)
    page = as_collector.get("/console/payments/review")
    assert page.status_code == 200
    assert "$1.00" in page.text and "€50.00" in page.text
    assert "currency differs from the link" in page.text
    assert f"/console/payments/review/{held.id}" in page.text
    assert 'value="apply"' not in page.text  # a dollar payment cannot go on a euro account


def test_collector_applies_one(as_collector: TestClient, db: Session, gateway) -> None:
    held = _held(db)
    token = csrf_of(as_collector, "/console/payments/review")
    response = as_collector.post(
        f"/console/payments/review/{held.id}",
        data={"csrf_token": token, "decision": "apply", "note": ""},
        follow_redirects=False,
    )
    assert response.status_code == 303 and "done=applied" in response.headers["location"]
    db.expire_all()
    assert held.status == "resolved" and held.resolution == "applied"
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "payment_review.resolved")
    ).one()
    assert event.actor.startswith("user:")
    assert "Payment applied" in as_collector.get(response.headers["location"]).text


def test_closing_needs_a_note_and_a_csrf_token(as_collector: TestClient, db: Session) -> None:
    held = _held(db)
    token = csrf_of(as_collector, "/console/payments/review")
    no_csrf = as_collector.post(
        f"/console/payments/review/{held.id}",
        data={"decision": "close", "note": "refunded"},
        follow_redirects=False,
    )
    assert no_csrf.status_code == 403
    no_note = as_collector.post(
        f"/console/payments/review/{held.id}",
        data={"csrf_token": token, "decision": "close", "note": ""},
        follow_redirects=False,
    )
    assert "say+what+happened" in no_note.headers["location"]
    db.expire_all()
    assert held.status == "open"
    bad = as_collector.post(
        "/console/payments/review/99999999999999999999",
        data={"csrf_token": token, "decision": "close", "note": "x"},
        follow_redirects=False,
    )
    assert bad.status_code == 422
    unknown = as_collector.post(
        f"/console/payments/review/{held.id}",
        data={"csrf_token": token, "decision": "refund", "note": "x"},
        follow_redirects=False,
    )
    assert unknown.status_code == 422


def test_signed_out_visitors_are_sent_to_login(client: TestClient, db: Session) -> None:
    response = client.get("/console/payments/review", follow_redirects=False)
    assert response.status_code in (303, 401) and "login" in response.headers.get(
        "location", "login"
    )
