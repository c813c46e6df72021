"""POST /stripe/webhook: signature, one record per event id, one payment per PaymentIntent."""

from __future__ import annotations

import time
from datetime import date

from sqlalchemy import func, select

from payment_links.service import create_link, link_metadata
from relance.db.models import AuditEvent, Payment, WebhookEvent
from tests.factories import make_debtor, make_invoice
from tests.support.stripe_fake import StripeFake

TODAY = date(2026, 3, 10)
SECRET = "whsec_test_secret"  # tests/conftest.py TEST_ENV


def _setup(db):
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 5000, due=TODAY)
    link, _ = create_link(db, debtor=debtor, purpose="balance")
    link.provider, link.provider_session_id = "stripe", "cs_test_abc"
    db.flush()
    return debtor, invoice, link


def _session_obj(link, intent="pi_test_1"):
    return {
        "id": link.provider_session_id,
        "object": "checkout.session",
        "amount_total": 5000,
        "currency": "eur",
        "metadata": link_metadata(link, "stripe"),
        "mode": "payment",
        "payment_intent": intent,
        "payment_status": "paid",
        "status": "complete",
        "client_reference_id": f"link-{link.id}",
        "customer": None,
    }


def _intent_obj(link, intent="pi_test_1", status="succeeded"):
    return {
        "id": intent,
        "object": "payment_intent",
        "amount": 5000,
        "amount_received": 5000,
        "currency": "eur",
        "metadata": link_metadata(link, "stripe"),
        "status": status,
    }


def _post(client, event, secret=SECRET, **kwargs):
    payload, header = StripeFake.signed(event, secret, **kwargs)
    return client.post(
        "/stripe/webhook",
        content=payload,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


def _payments(db, debtor):
    return db.scalar(select(func.count(Payment.id)).where(Payment.debtor_id == debtor.id))


def test_checkout_completed_records_the_payment(client, db, gateway):
    debtor, invoice, link = _setup(db)

    response = _post(client, StripeFake.event("checkout.session.completed", _session_obj(link)))

    assert response.status_code == 200 and response.json()["outcome"] == "recorded"
    db.expire_all()
    payment = db.scalars(select(Payment).where(Payment.debtor_id == debtor.id)).one()
    assert payment.provider_ref == "pi_test_1" and payment.amount_minor == 5000
    assert payment.payment_link_id == link.id and payment.provider == "stripe"
    assert invoice.status == "paid" and link.paid_at is not None
    assert len(gateway.texts_for(debtor)) == 1


def test_forged_signature_is_rejected_and_nothing_recorded(client, db, gateway):
    debtor, invoice, link = _setup(db)
    event = StripeFake.event("checkout.session.completed", _session_obj(link))

    forged = _post(client, event, secret="whsec_attacker")
    stale = _post(client, event, timestamp=int(time.time()) - 3600)
    payload, header = StripeFake.signed(event, SECRET)
    tampered = client.post(
        "/stripe/webhook",
        content=payload.replace(b"5000", b"1"),
        headers={"Stripe-Signature": header},
    )
    missing = client.post("/stripe/webhook", content=payload)

    for response in (forged, stale, tampered, missing):
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_signature"
    db.expire_all()
    assert _payments(db, debtor) == 0
    assert db.scalar(select(WebhookEvent.id).where(WebhookEvent.event_id == event["id"])) is None
    assert invoice.status == "open" and link.paid_at is None


def test_duplicate_event_records_one_payment(client, db, gateway):
    debtor, _invoice, link = _setup(db)
    event = StripeFake.event("checkout.session.completed", _session_obj(link))

    first = _post(client, event)
    second = _post(client, event)

    assert first.status_code == second.status_code == 200
    assert second.json() == {"received": True, "duplicate": True}
    assert _payments(db, debtor) == 1
    assert (
        db.scalar(select(func.count(WebhookEvent.id)).where(WebhookEvent.event_id == event["id"]))
        == 1
    )
    assert len(gateway.texts_for(debtor)) == 1


def test_session_completed_and_intent_succeeded_in_either_order_record_once(client, db, gateway):
    debtor, invoice, link = _setup(db)

    intent_first = _post(client, StripeFake.event("payment_intent.succeeded", _intent_obj(link)))
    session_later = _post(
        client, StripeFake.event("checkout.session.completed", _session_obj(link))
    )

    assert intent_first.json()["outcome"] == "recorded"
    assert session_later.json()["outcome"] == "already_recorded"
    db.expire_all()
    assert _payments(db, debtor) == 1
    assert invoice.status == "paid" and invoice.paid_minor == 5000
    assert link.paid_at is not None


def test_failure_after_success_changes_nothing(client, db, gateway):
    debtor, invoice, link = _setup(db)
    _post(client, StripeFake.event("checkout.session.completed", _session_obj(link)))

    late = _post(
        client,
        StripeFake.event(
            "payment_intent.payment_failed", _intent_obj(link, status="requires_payment_method")
        ),
    )

    assert late.status_code == 200
    db.expire_all()
    assert _payments(db, debtor) == 1 and invoice.status == "paid"


def test_payment_failed_is_audited_and_link_stays_usable(client, db, gateway):
    debtor, _invoice, link = _setup(db)
    obj = _intent_obj(link, intent="pi_declined", status="requires_payment_method")
    obj["last_payment_error"] = {"code": "card_declined", "type": "card_error"}

    response = _post(client, StripeFake.event("payment_intent.payment_failed", obj))

    assert response.json()["outcome"] == "failure_noted"
    db.expire_all()
    failed = db.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "payment.failed", AuditEvent.debtor_id == debtor.id
        )
    ).one()
    assert failed.details["code"] == "card_declined"
    assert _payments(db, debtor) == 0 and link.paid_at is None


def test_unpaid_session_and_foreign_events_are_acknowledged_without_effect(client, db, gateway):
    debtor, _invoice, link = _setup(db)
    unpaid = {**_session_obj(link), "payment_status": "unpaid"}
    foreign = {
        "id": "pi_other",
        "object": "payment_intent",
        "amount": 100,
        "currency": "eur",
        "metadata": {},
    }

    r1 = _post(client, StripeFake.event("checkout.session.completed", unpaid))
    r2 = _post(client, StripeFake.event("payment_intent.succeeded", foreign))
    r3 = _post(client, StripeFake.event("customer.created", {"id": "cus_1"}))

    assert [r.json()["outcome"] for r in (r1, r2, r3)] == [
        "awaiting_payment",
        "not_ours",
        "ignored",
    ]
    assert _payments(db, debtor) == 0


def test_amount_differing_from_the_link_is_recorded_but_held_for_review(client, db, gateway):
    """Money received is kept as received, but it settles nothing until a person decides
    (tests/payment_links/test_payment_review.py has the attacks of issue 17.3)."""
    debtor, invoice, link = _setup(db)
    obj = {**_session_obj(link), "amount_total": 4000}

    response = _post(client, StripeFake.event("checkout.session.completed", obj))

    assert response.json()["outcome"] == "held_for_review"
    db.expire_all()
    assert invoice.paid_minor == 0 and invoice.status == "open" and link.paid_at is None
    held = db.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "payment.held_for_review", AuditEvent.debtor_id == debtor.id
        )
    ).one()
    assert held.details["reasons"] == ["amount"]
    assert held.details["amount_minor"] == 4000 and held.details["expected_minor"] == 5000
