"""Off-session charges of a saved card with stripe-python against localstripe.

localstripe holds the Customer, PaymentMethod and PaymentIntent, and delivers its own signed
webhooks (to a local capture endpoint); we replay them into POST /stripe/webhook.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

import pytest
import stripe
from sqlalchemy import func, select

from payment_links.providers.stripe_provider import StripeProvider
from payment_links.wiring import install
from relance.db.models import Payment, PaymentLink
from relance.followups.service import run_followups
from relance.ledger import ports
from relance.ledger.models import SavedPaymentMethod
from tests.factories import make_debtor, make_invoice, make_plan
from tests.support.payment_fakes import WebhookCapture, localstripe_url

TODAY = date(2026, 3, 10)  # a Tuesday


def _run(db, day):
    """A pass at 11:00 Paris time on `day` (inside the French contact window on weekdays)."""
    return run_followups(db, day, now=datetime.combine(day, time(10, 0), UTC))


SECRET = "whsec_test_secret"


@pytest.fixture
def stripe_payments(stripe_settings) -> Iterator[StripeProvider]:
    provider = StripeProvider(stripe_settings)
    previous = ports._payments
    install(provider)
    yield provider
    ports._payments = previous


@pytest.fixture
def localstripe_hooks(stripe_server) -> Iterator[WebhookCapture]:
    """Ask localstripe to deliver its events, signed with our endpoint secret, to a capture."""
    capture = WebhookCapture()
    data = urllib.parse.urlencode({"url": capture.url, "secret": SECRET}).encode()
    hook_id = f"relance{id(capture)}"
    urllib.request.urlopen(
        urllib.request.Request(
            f"{localstripe_url()}/_config/webhooks/{hook_id}", data=data, method="POST"
        ),
        timeout=5,
    )
    yield capture
    capture.close()


def _saved_card(stripe_settings, debtor, plan, number: str) -> SavedPaymentMethod:
    client = stripe.StripeClient(
        stripe_settings.stripe_api_key, base_addresses={"api": stripe_settings.stripe_api_base}
    )
    customer = client.v1.customers.create(params={"email": "payer@example.com"})
    method = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    client.v1.payment_methods.attach(method.id, params={"customer": customer.id})
    return SavedPaymentMethod(
        debtor_id=debtor.id,
        plan_id=plan.id,
        provider="stripe",
        customer_ref=customer.id,
        payment_method_ref=method.id,
    )


def _plan(db):
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 5000, due=TODAY - timedelta(days=40))
    plan = make_plan(db, debtor, [2500, 2500], first_due=TODAY, invoices=[invoice])
    return debtor, invoice, plan


def _replay(client, body, headers):
    response = client.post(
        "/stripe/webhook", content=body, headers={"Stripe-Signature": headers["stripe-signature"]}
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_saved_card_is_charged_off_session_once(
    client, db, gateway, stripe_settings, stripe_payments, localstripe_hooks
):
    debtor, invoice, plan = _plan(db)
    db.add(_saved_card(stripe_settings, debtor, plan, "4242424242424242"))
    db.flush()

    report = _run(db, TODAY)
    again = _run(db, TODAY)

    first = plan.installments[0]
    assert report.charged == [first.id] and again.charged == []
    payment = db.scalars(select(Payment).where(Payment.debtor_id == debtor.id)).one()
    assert payment.provider == "stripe" and payment.provider_ref.startswith("pi_")
    assert payment.amount_minor == 2500 and first.status == "paid"
    assert invoice.paid_minor == 2500
    assert len(gateway.texts_for(debtor)) == 1  # the thanks

    body, headers = localstripe_hooks.wait_for("payment_intent.succeeded")
    assert payment.provider_ref in body.decode()
    assert _replay(client, body, headers)["outcome"] == "already_recorded"
    assert db.scalar(select(func.count(Payment.id)).where(Payment.debtor_id == debtor.id)) == 1


def test_declined_off_session_charge_tells_the_debtor_and_sends_a_link(
    client, db, gateway, stripe_settings, stripe_payments, localstripe_hooks
):
    debtor, invoice, plan = _plan(db)
    db.add(_saved_card(stripe_settings, debtor, plan, "4000000000000341"))  # attaches, declines
    db.flush()

    report = _run(db, TODAY)

    first = plan.installments[0]
    assert report.charge_failures == [first.id] and report.charged == []
    assert first.status == "due" and invoice.paid_minor == 0
    assert db.scalar(select(func.count(Payment.id)).where(Payment.debtor_id == debtor.id)) == 0
    link = db.scalars(select(PaymentLink).where(PaymentLink.debtor_id == debtor.id)).one()
    assert link.purpose == "installment" and link.installment_id == first.id
    (text,) = gateway.texts_for(debtor)
    assert "n'a pas abouti" in text and "/pay/" in text

    body, headers = localstripe_hooks.wait_for("payment_intent.payment_failed")
    assert _replay(client, body, headers)["outcome"] == "failure_noted"
    assert _run(db, TODAY).charge_failures == []
