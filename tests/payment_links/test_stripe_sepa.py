"""SEPA Direct Debit with the Stripe adapter against the Checkout fake (Stripe's object shapes):
a setup-mode session limited to sepa_debit, `setup_intent.succeeded` activating the mandate
with Stripe's mandate reference and the last four, revocation detaching the method, and
`mandate.updated` (inactive) stopping it."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import func, select

from payment_links.providers.stripe_provider import StripeProvider
from payment_links.wiring import install
from relance.db.models import PaymentPlan, WebhookEvent
from relance.ledger import ports as ledger_ports
from relance.plans import mandates
from tests.factories import make_debtor, make_invoice, make_plan
from tests.portal.conftest import make_portal, sign_in
from tests.support.stripe_fake import StripeFake

SECRET = "whsec_test_secret"


@pytest.fixture
def stripe_payments(stripe_settings):
    previous = ledger_ports._payments
    install(StripeProvider(stripe_settings))
    yield stripe_settings
    ledger_ports._payments = previous


def _deliver(client, event, secret=SECRET):
    payload, header = StripeFake.signed(event, secret)
    return client.post("/stripe/webhook", content=payload, headers={"Stripe-Signature": header})


def _pending(db):
    debtor = make_debtor(db, language="fr", email="d@example.com", channels=("sms",))
    invoice = make_invoice(db, debtor, 4000)
    plan = make_plan(db, debtor, [2000, 2000], invoices=[invoice])
    url = mandates.start_sepa(
        db,
        debtor,
        plan.id,
        mandate_text="texte",
        locale="fr",
        return_url="http://t/portal/x?done=mandate",
        cancel_url="http://t/portal/x",
    )
    db.flush()
    return debtor, mandates.methods_of(db, debtor)[0], url


def test_setup_session_then_setup_intent_succeeded_activates_the_mandate(
    client, db, stripe_payments, stripe_server
):
    _, saved, url = _pending(db)
    (request,) = stripe_server.checkout_requests("POST")
    assert request.params["mode"] == "setup"
    # Left without a mandate, the debtor is not thanked for one.
    assert request.params["success_url"] == "http://t/portal/x?done=mandate"
    assert request.params["cancel_url"] == "http://t/portal/x"
    assert request.params["allowed_payment_method_types"] == ["sepa_debit"]
    metadata = request.params["setup_intent_data"]["metadata"]
    assert metadata["relance_mandate_id"] == str(saved.id)
    assert url.startswith(stripe_server.base_url) and saved.setup_ref.startswith("cs_test_")

    forged = _deliver(
        client,
        StripeFake.event("setup_intent.succeeded", stripe_server.complete_setup(saved.setup_ref)),
        secret="whsec_forger",
    )
    assert forged.status_code == 400 and saved.status == "pending"
    assert db.scalar(select(func.count(WebhookEvent.id))) == 0

    setup = stripe_server.complete_setup(saved.setup_ref, last4="3000")
    answer = _deliver(client, StripeFake.event("setup_intent.succeeded", setup))
    assert answer.status_code == 200 and answer.json()["outcome"] == "mandate_active"
    db.refresh(saved)
    mandate = stripe_server.mandates[setup["mandate"]]
    assert (saved.status, saved.last4, saved.customer_ref) == ("active", "3000", setup["customer"])
    assert saved.mandate_reference == mandate["payment_method_details"]["sepa_debit"]["reference"]
    assert saved.payment_method_ref == setup["payment_method"]


def test_revoking_detaches_and_mandate_updated_stops_it(client, db, stripe_payments, stripe_server):
    debtor, saved, _ = _pending(db)
    setup = stripe_server.complete_setup(saved.setup_ref)
    assert _deliver(client, StripeFake.event("setup_intent.succeeded", setup)).status_code == 200
    db.refresh(saved)

    mandates.revoke(db, debtor, saved.id)
    assert stripe_server.detached == [setup["payment_method"]] and saved.status == "revoked"

    _, other, _ = _pending(db)
    other_setup = stripe_server.complete_setup(other.setup_ref)
    _deliver(client, StripeFake.event("setup_intent.succeeded", other_setup))
    inactive = dict(stripe_server.mandates[other_setup["mandate"]], status="inactive")
    answer = _deliver(client, StripeFake.event("mandate.updated", inactive))
    assert answer.json()["outcome"] == "mandate_inactive"
    db.refresh(other)
    assert other.status == "inactive" and other.revoked_at is not None


def test_the_portal_mandate_text_names_stripe_when_stripe_is_in_use(
    client, db, gateway, stripe_payments, stripe_server
):
    portal = make_portal(db, language="en")
    csrf = sign_in(client, portal)
    accepted = client.post(
        f"{portal.path}/plan/accept",
        data={"installments": "3", "frequency": "monthly", "csrf_token": csrf},
    )
    assert accepted.status_code == 200
    plan = db.scalars(select(PaymentPlan).where(PaymentPlan.debtor_id == portal.debtor.id)).one()
    named = (
        f"you authorise (A) {stripe_payments.creditor_name} and Stripe, "
        "our payment service provider"
    )

    shown = client.get(f"{portal.path}/plans/{plan.id}/direct-debit")
    assert named in html.unescape(shown.text) and "Sandbox" not in shown.text
    started = client.post(
        f"{portal.path}/plans/{plan.id}/direct-debit",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert started.headers["location"].startswith(stripe_server.base_url)
    (saved,) = mandates.methods_of(db, portal.debtor)
    assert saved.provider == "stripe" and named in (saved.mandate_text or "")
