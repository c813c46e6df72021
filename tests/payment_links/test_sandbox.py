"""The sandbox provider pays end to end through the same webhook handler and ledger."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from payment_links.service import create_link
from relance.db.models import AuditEvent, Payment, WebhookEvent
from relance.settings import get_settings
from tests.factories import make_debtor, make_invoice

TODAY = date(2026, 3, 10)


def _start(client, db, language="fr"):
    debtor = make_debtor(db, language=language, channels=("sms",))
    invoice = make_invoice(db, debtor, 4990, due=TODAY)
    link, url = create_link(db, debtor=debtor, purpose="balance")
    db.flush()
    path = url.removeprefix("http://testserver")
    response = client.post(path, follow_redirects=False)
    assert response.status_code == 303
    checkout = response.headers["location"].removeprefix("http://testserver")
    assert checkout.startswith("/pay/sandbox/cs_sandbox_")
    return debtor, invoice, link, path, checkout


def test_decline_then_success_records_one_payment(client, db, gateway):
    debtor, invoice, link, path, checkout = _start(client, db)

    page = client.get(checkout)
    assert page.status_code == 200 and "49,90" in page.text

    declined = client.post(checkout + "/complete", data={"outcome": "decline"})
    assert declined.status_code == 200 and "La carte a été refusée" in declined.text
    db.expire_all()
    assert (
        db.scalar(
            select(AuditEvent.id).where(
                AuditEvent.action == "payment.failed", AuditEvent.debtor_id == debtor.id
            )
        )
        is not None
    )
    assert db.scalar(select(func.count(Payment.id)).where(Payment.debtor_id == debtor.id)) == 0

    paid = client.post(checkout + "/complete", data={"outcome": "success"})
    again = client.post(checkout + "/complete", data={"outcome": "success"})

    assert paid.status_code == again.status_code == 200
    assert "reçu" in paid.text
    db.expire_all()
    payment = db.scalars(select(Payment).where(Payment.debtor_id == debtor.id)).one()
    assert payment.provider == "sandbox" and payment.amount_minor == 4990
    assert invoice.status == "paid" and link.paid_at is not None
    kinds = db.scalars(
        select(WebhookEvent.kind).where(WebhookEvent.event_id.like("evt_sandbox_%"))
    ).all()
    assert {"payment_intent.succeeded", "checkout.session.completed"} <= set(kinds)
    assert len(gateway.texts_for(debtor)) == 1
    assert client.get(path).status_code == 410


def test_double_submit_of_checkout_reuses_the_sandbox_session(client, db):
    _debtor, _invoice, _link, path, checkout = _start(client, db)
    second = client.post(path, follow_redirects=False)
    assert second.headers["location"].endswith(checkout)


def test_sandbox_pages_do_not_exist_when_stripe_is_configured(client, db, monkeypatch):
    _, _, _, _, checkout = _start(client, db)
    assert client.get(checkout).status_code == 200

    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_relance")
    get_settings.cache_clear()

    assert client.get(checkout).status_code == 404
    assert client.post(checkout + "/complete", data={"outcome": "success"}).status_code == 404


def test_sandbox_installment_payment_keeps_a_card_for_the_next_ones(
    client, db, gateway, sandbox_payments
):
    from datetime import UTC, datetime, timedelta

    from relance.followups.service import run_followups
    from relance.ledger.models import SavedPaymentMethod
    from tests.factories import make_plan

    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 4000, due=TODAY - timedelta(days=30))
    plan = make_plan(db, debtor, [2000, 2000], first_due=TODAY, invoices=[invoice])
    first, second = plan.installments
    _, url = create_link(db, debtor=debtor, purpose="installment", installment=first)
    db.flush()
    path = url.removeprefix("http://testserver")
    checkout = client.post(path, follow_redirects=False).headers["location"]
    client.post(
        checkout.removeprefix("http://testserver") + "/complete", data={"outcome": "success"}
    )

    db.expire_all()
    saved = db.scalars(
        select(SavedPaymentMethod).where(SavedPaymentMethod.debtor_id == debtor.id)
    ).one()
    assert saved.provider == "sandbox" and saved.plan_id == plan.id
    assert first.status == "paid" and client.post(path).status_code == 410

    report = run_followups(db, second.due_date, now=datetime(2026, 4, 9, 10, 0, tzinfo=UTC))

    assert report.charged == [second.id]
    assert second.status == "paid" and plan.status == "completed" and invoice.status == "paid"
