"""Stripe Checkout end to end: stripe-python -> Checkout fake (+ localstripe) -> signed webhook."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from payment_links.service import create_link
from relance.db.models import Payment
from relance.ledger.models import SavedPaymentMethod
from tests.factories import make_debtor, make_invoice, make_plan
from tests.support.stripe_fake import StripeFake

TODAY = date(2026, 3, 10)
SECRET = "whsec_test_secret"


def _deliver(client, event):
    payload, header = StripeFake.signed(event, SECRET)
    response = client.post("/stripe/webhook", content=payload, headers={"Stripe-Signature": header})
    assert response.status_code == 200, response.text
    return response.json()


def test_balance_checkout_session_has_exact_amount_and_metadata(
    client, db, gateway, stripe_settings, stripe_server
):
    debtor = make_debtor(db, language="en", email="payer@example.com", channels=("sms",))
    a = make_invoice(db, debtor, 3000, due=TODAY)
    b = make_invoice(db, debtor, 2050, due=TODAY)
    link, url = create_link(db, debtor=debtor, purpose="balance")
    db.flush()
    path = url.removeprefix("http://testserver")

    first = client.post(path, follow_redirects=False)
    second = client.post(path, follow_redirects=False)  # double submit: resumes the same session

    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    creates = stripe_server.checkout_requests("POST")
    assert len(creates) == 1
    params = creates[0].params
    assert params["mode"] == "payment" and params["locale"] == "en"
    item = params["line_items"][0]
    assert item["price_data"]["unit_amount"] == "5050" and item["price_data"]["currency"] == "eur"
    assert a.number in item["price_data"]["product_data"]["name"]
    assert params["metadata"]["relance_link_id"] == str(link.id)
    assert params["payment_intent_data"]["metadata"]["relance_debtor_id"] == str(debtor.id)
    assert params["customer_email"] == "payer@example.com"
    assert "setup_future_usage" not in params["payment_intent_data"]
    assert params["success_url"].endswith("?checkout=success")
    db.expire_all()
    session_id = link.provider_session_id
    assert session_id.startswith("cs_test_") and link.provider == "stripe"

    completed = stripe_server.complete(session_id)
    outcome = _deliver(client, StripeFake.event("checkout.session.completed", completed))
    intent = stripe_server.intent(completed["payment_intent"])
    duplicate = _deliver(client, StripeFake.event("payment_intent.succeeded", intent))

    assert outcome["outcome"] == "recorded" and duplicate["outcome"] == "already_recorded"
    db.expire_all()
    payment = db.scalars(select(Payment).where(Payment.debtor_id == debtor.id)).one()
    assert payment.provider_ref == completed["payment_intent"] and payment.amount_minor == 5050
    assert a.status == b.status == "paid"
    assert client.get(path + "?checkout=success").status_code == 200
    assert client.post(path, follow_redirects=False).status_code == 410
    assert len(stripe_server.checkout_requests("POST")) == 1


def test_installment_checkout_saves_the_card_for_later(
    client, db, gateway, stripe_settings, stripe_server
):
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 6000, due=TODAY)
    plan = make_plan(db, debtor, [2000, 2000, 2000], first_due=TODAY, invoices=[invoice])
    link, url = create_link(
        db, debtor=debtor, purpose="installment", installment=plan.installments[0]
    )
    db.flush()

    client.post(url.removeprefix("http://testserver"), follow_redirects=False)
    params = stripe_server.checkout_requests("POST")[0].params
    assert params["payment_intent_data"]["setup_future_usage"] == "off_session"
    assert params["customer_creation"] == "always"
    db.expire_all()

    completed = stripe_server.complete(link.provider_session_id)
    _deliver(client, StripeFake.event("checkout.session.completed", completed))

    db.expire_all()
    saved = db.scalars(
        select(SavedPaymentMethod).where(SavedPaymentMethod.debtor_id == debtor.id)
    ).one()
    assert saved.customer_ref == completed["customer"] and saved.customer_ref.startswith("cus_")
    assert saved.payment_method_ref.startswith("pm_") and saved.plan_id == plan.id
    assert plan.installments[0].status == "paid" and plan.installments[1].status == "due"
    assert db.scalar(select(func.count(Payment.id)).where(Payment.debtor_id == debtor.id)) == 1


def test_provider_outage_gives_a_503_page_and_the_link_stays_open(
    client, db, stripe_settings, stripe_server
):
    from tests.support.stripe_fake import StripeApiError

    debtor = make_debtor(db, channels=("sms",))
    make_invoice(db, debtor, 1000, due=TODAY)
    link, url = create_link(db, debtor=debtor, purpose="balance")
    db.flush()
    # stripe-python retries (max_network_retries=2): the outage outlasts the retries.
    stripe_server.fail_next = [StripeApiError(500, "boom", kind="api_error")] * 3

    response = client.post(url.removeprefix("http://testserver"), follow_redirects=False)

    assert response.status_code == 503
    assert "Réessayez dans quelques minutes" in response.text
    db.expire_all()
    assert link.provider_session_id is None and link.paid_at is None
    assert len(stripe_server.checkout_requests("POST")) == 3


def test_paid_at_stripe_before_the_webhook_never_opens_a_second_checkout(
    client, db, gateway, stripe_settings, stripe_server
):
    debtor = make_debtor(db, language="en", channels=("sms",))
    make_invoice(db, debtor, 3000, due=TODAY)
    link, url = create_link(db, debtor=debtor, purpose="balance")
    db.flush()
    path = url.removeprefix("http://testserver")
    client.post(path, follow_redirects=False)
    db.expire_all()
    completed = stripe_server.complete(link.provider_session_id)

    back_button = client.post(path, follow_redirects=False)  # webhook not delivered yet

    assert back_button.status_code == 200 and "being confirmed" in back_button.text
    assert len(stripe_server.checkout_requests("POST")) == 1
    _deliver(client, StripeFake.event("checkout.session.completed", completed))
    returned = client.get(path + "?checkout=success")
    assert returned.status_code == 200 and "received your payment of €30.00" in returned.text
