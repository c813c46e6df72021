"""Payments that do not pay what their link asks (issue 17.3): signed Stripe events for the wrong
amount, currency or debtor are recorded, settle nothing, and wait in the review queue; the link
stays usable until it is really paid; a collector applies or closes each one."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from payment_links.providers import CheckoutSession, CheckoutStatus
from payment_links.service import LinkState, create_link, link_metadata, link_state, start_checkout
from relance.db.models import AuditEvent, Payment, PaymentAllocation, PaymentReview
from relance.errors import Conflict, InvalidContent, PolicyViolation
from relance.ledger import review
from tests.factories import make_debtor, make_invoice
from tests.support.stripe_fake import StripeFake

TODAY = date(2026, 3, 10)
SECRET = "whsec_test_secret"  # tests/conftest.py TEST_ENV


def _post(client, kind, obj):
    payload, header = StripeFake.signed(StripeFake.event(kind, obj), SECRET)
    return client.post("/stripe/webhook", content=payload, headers={"Stripe-Signature": header})


def _link(db, amount_minor=797_046):
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, amount_minor, due=TODAY)
    link, url = create_link(db, debtor=debtor, purpose="balance")
    link.provider, link.provider_session_id = "stripe", "cs_test_review"
    db.flush()
    return debtor, invoice, link, url


def _session(link, *, amount, currency="eur", intent="pi_review_1", metadata=None):
    return {
        "id": link.provider_session_id,
        "object": "checkout.session",
        "amount_total": amount,
        "currency": currency,
        "metadata": metadata if metadata is not None else link_metadata(link, "stripe"),
        "mode": "payment",
        "payment_intent": intent,
        "payment_status": "paid",
        "status": "complete",
        "customer": None,
    }


def _held(db, debtor_id):
    return db.scalars(select(PaymentReview).where(PaymentReview.debtor_id == debtor_id)).all()


def test_one_dollar_does_not_pay_a_7970_euro_link(client, db, gateway):
    """The attack: a signed checkout.session.completed for 1 USD marked the link paid."""
    debtor, invoice, link, url = _link(db)

    response = _post(
        client, "checkout.session.completed", _session(link, amount=100, currency="usd")
    )

    assert response.status_code == 200 and response.json()["outcome"] == "held_for_review"
    db.expire_all()
    payment = db.scalars(select(Payment).where(Payment.debtor_id == debtor.id)).one()
    assert (payment.amount_minor, payment.currency) == (100, "USD")  # the money is recorded
    assert (
        db.scalars(
            select(PaymentAllocation).where(PaymentAllocation.payment_id == payment.id)
        ).all()
        == []
    )
    assert invoice.status == "open" and invoice.paid_minor == 0
    assert debtor.credit_minor == 0  # no dollar credit on a euro account
    assert link.paid_at is None and link_state(db, link) == LinkState.OPEN
    [held] = _held(db, debtor.id)
    assert held.reasons == ["amount", "currency"] and held.status == "open"
    assert (held.expected_minor, held.expected_currency) == (797_046, "EUR")
    assert gateway.texts_for(debtor) == []  # no "thank you for your payment"
    page = client.get(url.split("testserver", 1)[-1])
    assert page.status_code == 200  # the link is still usable, not "already paid" (410)


def test_intent_naming_another_debtor_does_not_pay_the_link(client, db, gateway):
    """A payment intent's debtor was not checked against the link's debtor."""
    _owner, invoice, link, _url = _link(db, 5000)
    other = make_debtor(db, channels=("sms",))
    make_invoice(db, other, 5000, due=TODAY)
    intent = {
        "id": "pi_other_debtor",
        "object": "payment_intent",
        "amount": 5000,
        "amount_received": 5000,
        "currency": "eur",
        "metadata": {**link_metadata(link, "stripe"), "relance_debtor_id": str(other.id)},
        "status": "succeeded",
    }

    response = _post(client, "payment_intent.succeeded", intent)

    assert response.json()["outcome"] == "held_for_review"
    db.expire_all()
    assert invoice.status == "open" and link.paid_at is None
    [held] = _held(db, other.id)
    assert held.reasons == ["debtor"] and held.expected_debtor_id == link.debtor_id
    assert other.credit_minor == 0


def test_the_second_event_of_a_held_payment_does_not_pay_the_link(client, db, gateway):
    debtor, invoice, link, _url = _link(db, 5000)
    _post(client, "checkout.session.completed", _session(link, amount=4000))
    intent = {
        "id": "pi_review_1",
        "object": "payment_intent",
        "amount": 4000,
        "amount_received": 4000,
        "currency": "eur",
        "metadata": link_metadata(link, "stripe"),
        "status": "succeeded",
    }

    again = _post(client, "payment_intent.succeeded", intent)

    assert again.json()["outcome"] == "already_recorded"
    db.expire_all()
    assert link.paid_at is None and invoice.paid_minor == 0 and len(_held(db, debtor.id)) == 1


def test_matching_payment_is_not_held(client, db, gateway):
    debtor, invoice, link, _url = _link(db, 5000)
    response = _post(client, "checkout.session.completed", _session(link, amount=5000))
    assert response.json()["outcome"] == "recorded"
    db.expire_all()
    assert invoice.status == "paid" and link.paid_at is not None and _held(db, debtor.id) == []


class _CompletedCheckout:
    """A provider whose checkout for the link was completed (the held payment) at the provider."""

    name = "stripe"

    def __init__(self):
        self.created = 0

    def checkout_status(self, session_id, request):
        return CheckoutStatus(state="complete")

    def create_checkout(self, request):
        self.created += 1
        return CheckoutSession(id=f"cs_new_{self.created}", url="https://checkout.test/new")


def test_after_a_held_payment_the_link_opens_a_new_checkout(client, db, gateway):
    _debtor, _invoice, link, url = _link(db, 5000)
    _post(client, "checkout.session.completed", _session(link, amount=1))
    provider = _CompletedCheckout()
    token = url.rsplit("/", 1)[-1]

    started = start_checkout(db, token, provider, description="x", locale="fr")

    assert started.state == LinkState.OPEN and started.url == "https://checkout.test/new"
    assert provider.created == 1


def test_collector_applies_a_held_underpayment(client, db, gateway):
    debtor, invoice, link, _url = _link(db, 5000)
    _post(client, "checkout.session.completed", _session(link, amount=4000))
    db.expire_all()
    [held] = _held(db, debtor.id)

    review.resolve(db, held, apply=True, actor="user:collector@example.test", note="short by 10 €")

    db.expire_all()
    assert invoice.paid_minor == 4000 and invoice.status == "open"
    assert held.status == "resolved" and held.resolution == "applied"
    assert len(gateway.texts_for(debtor)) == 1  # thanked once the money counts
    actions = db.scalars(select(AuditEvent.action).where(AuditEvent.debtor_id == debtor.id)).all()
    assert "payment.held_for_review" in actions and "payment_review.resolved" in actions
    with pytest.raises(Conflict, match="already") as refused:
        review.resolve(db, held, apply=False, actor="user:x", note="again")
    assert refused.value.code == "already_reviewed"


def test_a_payment_in_another_currency_can_only_be_closed(client, db, gateway):
    debtor, invoice, _link_row, _url = _link(db, 5000)
    _post(client, "checkout.session.completed", _session(_link_row, amount=5000, currency="usd"))
    db.expire_all()
    [held] = _held(db, debtor.id)
    with pytest.raises(PolicyViolation, match="USD") as wrong_currency:
        review.resolve(db, held, apply=True, actor="user:c")
    assert wrong_currency.value.code == "currency_mismatch"
    with pytest.raises(InvalidContent, match="say what happened") as no_note:
        review.resolve(db, held, apply=False, actor="user:c", note="  ")
    assert no_note.value.code == "note_required"
    with pytest.raises(InvalidContent) as long_note:
        review.resolve(db, held, apply=False, actor="user:c", note="x" * 2001)
    assert long_note.value.code == "note_too_long"
    db.expire_all()
    assert held.status == "open"
    review.resolve(db, held, apply=False, actor="user:c", note="refunded in Stripe")
    db.expire_all()
    assert held.resolution == "closed" and invoice.paid_minor == 0
