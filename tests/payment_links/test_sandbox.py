"""The sandbox provider pays end to end through the same webhook handler and ledger, and ends
the checkout as Stripe Checkout does: paid, at the checkout's success URL; a declined card, on
the page again; the cancel URL one link away. It never sends anyone off this site."""

from __future__ import annotations

from datetime import date
from html import escape, unescape
from urllib.parse import urlencode, urlsplit

import pytest
from sqlalchemy import func, select

from payment_links.service import create_link
from relance.db.models import AuditEvent, Payment, WebhookEvent
from relance.settings import get_settings
from tests.factories import make_debtor, make_invoice
from tests.support.sandbox_checkout import completion

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
    complete, returns = completion(checkout)

    page = client.get(checkout)
    assert page.status_code == 200 and "49,90" in page.text

    declined = client.post(complete, data={**returns, "outcome": "decline"})
    assert declined.status_code == 200 and "La carte a été refusée" in declined.text
    assert declined.url.path == urlsplit(checkout).path  # still the checkout, to try again
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

    paid = client.post(complete, data={**returns, "outcome": "success"})
    again = client.post(complete, data={**returns, "outcome": "success"})

    assert paid.status_code == again.status_code == 200
    # Both end where Stripe sends a paid checkout: the link's page, which thanks the debtor.
    assert str(paid.url) == str(again.url) == f"http://testserver{path}?checkout=success"
    assert "Paiement reçu" in paid.text and "Paiement reçu" in again.text
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

    complete, returns = completion(checkout)
    assert client.get(checkout).status_code == 404
    assert client.post(complete, data={**returns, "outcome": "success"}).status_code == 404


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
    complete, returns = completion(checkout)
    client.post(complete, data={**returns, "outcome": "success"})

    db.expire_all()
    saved = db.scalars(
        select(SavedPaymentMethod).where(SavedPaymentMethod.debtor_id == debtor.id)
    ).one()
    assert saved.provider == "sandbox" and saved.plan_id == plan.id
    assert first.status == "paid" and client.post(path).status_code == 410

    report = run_followups(db, second.due_date, now=datetime(2026, 4, 9, 10, 0, tzinfo=UTC))

    assert report.charged == [second.id]
    assert second.status == "paid" and plan.status == "completed" and invoice.status == "paid"


def test_the_checkout_ends_at_its_success_url_and_offers_its_cancel_url(client, db, gateway):
    """What the link's page asked the provider for is where the sandbox goes: no page of its
    own after the payment, and "cancel" back to the link's page with its notice."""
    _debtor, _invoice, _link, path, checkout = _start(client, db)
    complete, returns = completion(checkout)
    assert returns == {
        "success": f"http://testserver{path}?checkout=success",
        "cancel": f"http://testserver{path}?checkout=cancelled",
    }
    page = client.get(checkout).text
    assert f'href="{escape(returns["cancel"])}">Annuler le paiement' in page
    cancelled = client.get(returns["cancel"])
    assert cancelled.status_code == 200 and "Le paiement n'a pas abouti" in unescape(cancelled.text)

    paid = client.post(complete, data={**returns, "outcome": "success"}, follow_redirects=False)

    assert paid.status_code == 303 and paid.headers["location"] == returns["success"]
    after = client.get(checkout).text  # the page again (a reload): paid, and the way on
    assert "Paiement de 49,90" in after and f'href="{escape(returns["success"])}"' in after


@pytest.mark.parametrize(
    ("success", "cancel"),
    [
        ("https://evil.example/pay/x?checkout=success", None),
        (None, "https://evil.example/"),
        ("//evil.example/pay/x", None),
        ("http://testserver.evil.example/pay/x", None),
        ("http://testserver@evil.example/pay/x", None),
        ("http://testserver/console/", None),
        ("http://testserver/pay/../console", None),
        ("", None),
        (None, ""),
    ],
)
def test_a_checkout_that_would_leave_the_site_is_refused_and_nothing_is_paid(
    client, db, gateway, success, cancel
):
    """The attack: a sandbox checkout address (or its form) naming another site, or none. The
    page and the buttons answer 400 without paying and without sending anyone there."""
    debtor, _invoice, link, _path, checkout = _start(client, db)
    complete, returns = completion(checkout)
    forged = {
        "success": returns["success"] if success is None else success,
        "cancel": returns["cancel"] if cancel is None else cancel,
    }

    page = client.get(f"{complete.removesuffix('/complete')}?{urlencode(forged)}")
    paid = client.post(complete, data={**forged, "outcome": "success"}, follow_redirects=False)

    for answer in (page, paid):
        assert answer.status_code == 400 and "location" not in answer.headers
        assert "evil.example" not in answer.text
        assert "ne dit pas où revenir" in unescape(answer.text)
    db.expire_all()
    assert link.paid_at is None
    assert db.scalar(select(func.count(Payment.id)).where(Payment.debtor_id == debtor.id)) == 0
