"""Link creation: random token, only its hash stored, bound to debtor and amount, expiring."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from payment_links.service import LinkState, create_link, find_link, link_state
from relance.db.base import utcnow
from relance.db.models import AuditEvent, PaymentLink
from relance.errors import InvalidContent, PolicyViolation
from tests.factories import make_debtor, make_invoice, make_plan

TODAY = date(2026, 3, 10)


def _token(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_balance_link_binds_debtor_amount_and_expiry(db, settings):
    debtor = make_debtor(db, channels=("sms",))
    a = make_invoice(db, debtor, 3000, due=TODAY - timedelta(days=30))
    b = make_invoice(db, debtor, 4550, due=TODAY, paid_minor=550)

    link, url = create_link(db, debtor=debtor, purpose="balance")

    token = _token(url)
    assert url == f"http://testserver/pay/{token}"
    assert len(token) >= 43  # 32 random bytes, url-safe base64
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(db.scalars(select(AuditEvent.details)).all())
    assert link.debtor_id == debtor.id and link.amount_minor == 7000 and link.currency == "EUR"
    assert link.invoice_ids == [a.id, b.id]
    ttl = link.expires_at - utcnow()
    assert timedelta(days=settings.payment_link_ttl_days) - timedelta(minutes=1) < ttl
    assert find_link(db, token) is link and find_link(db, token + "x") is None
    assert link_state(db, link) == LinkState.OPEN


def test_two_links_never_share_a_token(db):
    debtor = make_debtor(db, channels=("sms",))
    make_invoice(db, debtor, 1000, due=TODAY)
    urls = {create_link(db, debtor=debtor, purpose="balance")[1] for _ in range(20)}
    assert len(urls) == 20
    assert db.scalar(select(PaymentLink.token_hash).where(PaymentLink.token_hash.in_(urls))) is None


def test_installment_and_promise_links(db):
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 9000, due=TODAY)
    plan = make_plan(db, debtor, [3000, 3000, 3000], first_due=TODAY, invoices=[invoice])
    second = plan.installments[1]
    second.paid_minor = 500

    link, _ = create_link(db, debtor=debtor, purpose="installment", installment=second)
    assert link.amount_minor == 2500 and link.installment_id == second.id
    assert link.invoice_ids == [invoice.id]

    promise_link, _ = create_link(db, debtor=debtor, purpose="promise", amount_minor=4000)
    assert promise_link.amount_minor == 4000 and promise_link.purpose == "promise"


def test_links_refuse_nonsense(db):
    debtor, other = make_debtor(db, channels=("sms",)), make_debtor(db, channels=("sms",))
    with pytest.raises(PolicyViolation) as nothing:
        create_link(db, debtor=debtor, purpose="balance")
    invoice = make_invoice(db, other, 9000, due=TODAY)
    plan = make_plan(db, other, [9000], first_due=TODAY, invoices=[invoice])
    with pytest.raises(InvalidContent) as not_theirs:
        create_link(db, debtor=debtor, purpose="installment", installment=plan.installments[0])
    with pytest.raises(InvalidContent) as purpose:
        create_link(db, debtor=other, purpose="refund")
    with pytest.raises(InvalidContent) as no_installment:
        create_link(db, debtor=other, purpose="installment")
    with pytest.raises(InvalidContent) as no_amount:
        create_link(db, debtor=other, purpose="promise")
    make_invoice(db, other, 1000, due=TODAY, currency="USD")
    with pytest.raises(PolicyViolation) as currencies:
        create_link(db, debtor=other, purpose="balance")
    codes = [
        e.value.code for e in (nothing, not_theirs, purpose, no_installment, no_amount, currencies)
    ]
    assert codes == [
        "nothing_owed",
        "installment_not_debtors",
        "unknown_purpose",
        "installment_required",
        "amount_required",
        "mixed_currencies",
    ]
    assert db.scalar(select(func.count(PaymentLink.id))) == 0


def test_expired_paid_and_settled_states(db):
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 1000, due=TODAY)
    link, _ = create_link(db, debtor=debtor, purpose="balance")

    assert link_state(db, link, now=link.expires_at) == LinkState.EXPIRED
    invoice.status = "paid"
    assert link_state(db, link) == LinkState.SETTLED
    link.paid_at = utcnow()
    assert link_state(db, link) == LinkState.PAID
    assert link_state(db, None) == LinkState.UNKNOWN


def test_installment_link_is_settled_once_the_installment_is_paid(db):
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 4000, due=TODAY)
    plan = make_plan(db, debtor, [2000, 2000], first_due=TODAY, invoices=[invoice])
    link, _ = create_link(
        db, debtor=debtor, purpose="installment", installment=plan.installments[0]
    )

    plan.installments[0].status = "paid"

    assert link_state(db, link) == LinkState.SETTLED
