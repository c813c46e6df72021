"""A card kept on file with the Stripe adapter, for a plan SEPA Direct Debit cannot collect: a
setup-mode Checkout Session limited to `card`, `setup_intent.succeeded` (a card's has no mandate)
activating it with the card's last four read from Stripe, the worker's off-session charge of an
installment (the card and its PaymentIntents are localstripe's), and the debtor's revocation
detaching the card."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
import stripe
from sqlalchemy import select

from console.payment_methods import failure_label
from payment_links.providers.stripe_provider import StripeProvider
from payment_links.service import charge_metadata
from payment_links.wiring import install
from relance.db.models import AuditEvent, Payment, Task
from relance.followups import charges
from relance.followups.service import run_followups
from relance.ledger import ports as ledger_ports
from relance.ledger.models import InstallmentCharge
from relance.plans import mandates
from tests.factories import make_debtor, make_invoice, make_plan
from tests.support.stripe_fake import StripeFake

SECRET = "whsec_test_secret"
TODAY = date(2026, 3, 10)  # a Tuesday
CONSENT = "By saving your card, you authorise Relance Demo SAS to charge it..."


@pytest.fixture
def stripe_payments(stripe_settings):
    previous = ledger_ports._payments
    install(StripeProvider(stripe_settings))
    yield stripe_settings
    ledger_ports._payments = previous


def _deliver(client, event, secret=SECRET):
    payload, header = StripeFake.signed(event, secret)
    return client.post("/stripe/webhook", content=payload, headers={"Stripe-Signature": header})


def _pending_card(db):
    """A debtor in London with a euro plan (SEPA would not reach them), a card set-up started."""
    debtor = make_debtor(db, language="en", country="GB", email="d@example.com", channels=("sms",))
    invoice = make_invoice(db, debtor, 5000, due=TODAY - timedelta(days=40))
    plan = make_plan(db, debtor, [2500, 2500], first_due=TODAY, invoices=[invoice])
    url = mandates.start_card(
        db,
        debtor,
        plan.id,
        consent_text=CONSENT,
        locale="en",
        return_url="http://t/portal/x",
        cancel_url="http://t/portal/x",
    )
    db.flush()
    (saved,) = mandates.methods_of(db, debtor)
    return debtor, plan, saved, url


def test_card_setup_session_then_setup_intent_succeeded_keeps_the_card(
    client, db, stripe_payments, stripe_server
):
    _, _, saved, url = _pending_card(db)
    (request,) = stripe_server.checkout_requests("POST")
    assert request.params["mode"] == "setup"
    assert request.params["allowed_payment_method_types"] == ["card"]
    assert request.params["setup_intent_data"]["metadata"]["relance_mandate_id"] == str(saved.id)
    assert request.params["customer_creation"] == "always"
    assert url.startswith(stripe_server.base_url) and saved.setup_ref.startswith("cs_test_")
    assert (saved.kind, saved.status, saved.mandate_text) == ("card", "pending", CONSENT)

    setup = stripe_server.complete_card_setup(saved.setup_ref, card="4000000000000077")
    answer = _deliver(client, StripeFake.event("setup_intent.succeeded", setup))
    assert answer.status_code == 200 and answer.json()["outcome"] == "card_active"
    db.refresh(saved)
    assert (saved.status, saved.last4, saved.mandate_ref) == ("active", "0077", None)
    assert (saved.customer_ref, saved.payment_method_ref) == (
        setup["customer"],
        setup["payment_method"],
    )
    replay = _deliver(client, StripeFake.event("setup_intent.succeeded", setup))
    assert replay.json()["outcome"] == "card_not_pending"


def test_the_kept_card_pays_an_installment_off_session_then_is_detached(
    client, db, gateway, stripe_payments, stripe_server
):
    debtor, plan, saved, _ = _pending_card(db)
    setup = stripe_server.complete_card_setup(saved.setup_ref)
    assert _deliver(client, StripeFake.event("setup_intent.succeeded", setup)).status_code == 200
    db.refresh(saved)

    first = plan.installments[0]
    report = run_followups(db, TODAY, now=datetime.combine(TODAY, time(10, 0), UTC))
    assert report.charged == [first.id] and first.status == "paid"
    payment = db.scalars(select(Payment).where(Payment.debtor_id == debtor.id)).one()
    assert (payment.method, payment.provider) == ("card", "stripe")
    assert payment.provider_ref.startswith("pi_") and payment.amount_minor == 2500

    mandates.revoke(db, debtor, saved.id)
    assert saved.status == "revoked"
    client_ = stripe.StripeClient(
        stripe_payments.stripe_api_key,
        base_addresses={"api": stripe_payments.stripe_api_base},
    )
    assert client_.v1.payment_methods.retrieve(setup["payment_method"]).customer is None


def test_a_sepa_setup_intent_without_its_mandate_is_refused_before_anything_is_stored(
    client, db, stripe_payments, stripe_server
):
    """A card's SetupIntent has no mandate; one for SEPA Direct Debit without it is malformed."""
    _, _, saved, _ = _pending_card(db)
    setup = stripe_server.complete_card_setup(saved.setup_ref)
    setup["payment_method_types"] = ["sepa_debit"]
    answer = _deliver(client, StripeFake.event("setup_intent.succeeded", setup))
    assert answer.status_code == 400
    db.refresh(saved)
    assert saved.status == "pending"


def _active_card(client, db, stripe_server):
    debtor, plan, saved, _ = _pending_card(db)
    setup = stripe_server.complete_card_setup(saved.setup_ref)
    assert _deliver(client, StripeFake.event("setup_intent.succeeded", setup)).status_code == 200
    db.refresh(saved)
    return debtor, plan, saved


@pytest.mark.parametrize(
    ("code", "decline_code", "told"),
    [
        ("card_declined", "insufficient_funds", "there were not enough funds on the account"),
        ("card_declined", "do_not_honor", "your card's bank refused it and asks you to contact it"),
        ("card_declined", "card_velocity_exceeded", "the amount is above your card's limit"),
        ("expired_card", "expired_card", "your card has expired"),
        ("incorrect_cvc", "incorrect_cvc", "security code"),
        # Stripe: a card reported lost or stolen is told as a generic decline.
        ("card_declined", "lost_card", "your card was declined by its bank"),
        ("card_declined", "stolen_card", "your card was declined by its bank"),
    ],
)
def test_a_declined_off_session_charge_is_recorded_with_the_issuers_reason(
    client, db, gateway, stripe_payments, stripe_server, code, decline_code, told
):
    """Stripe's card_error says `card_declined` and puts the issuer's reason in `decline_code`:
    the charge, the collector's task and the debtor's message use the issuer's reason."""
    debtor, plan, saved = _active_card(client, db, stripe_server)
    stripe_server.decline_card(saved.payment_method_ref, code, decline_code)

    report = run_followups(db, TODAY, now=datetime.combine(TODAY, time(10, 0), UTC))

    first = plan.installments[0]
    assert report.charge_failures == [first.id] and first.status == "due"
    row = db.scalars(
        select(InstallmentCharge).where(InstallmentCharge.debtor_id == debtor.id)
    ).one()
    assert row.status == "failed" and row.failure_code == decline_code
    assert row.provider_ref in stripe_server.card_intents  # the failed PaymentIntent is kept
    assert not failure_label(row.failure_code).startswith("Not described")
    (task,) = db.scalars(select(Task).where(Task.debtor_id == debtor.id)).all()
    assert task.details["reason"] == "charge_failed" and task.details["code"] == decline_code
    (text,) = gateway.texts_for(debtor)
    assert "did not go through" in text and told in text and "/pay/" in text
    assert "lost" not in text and "stolen" not in text

    # Stripe then delivers payment_intent.payment_failed for the same PaymentIntent.
    failed = StripeFake.event(
        "payment_intent.payment_failed", stripe_server.intent(row.provider_ref)
    )
    assert _deliver(client, failed).json()["outcome"] == "already_failed"
    assert len(gateway.texts_for(debtor)) == 1


def test_payment_failed_events_record_the_issuers_reason(
    client, db, gateway, stripe_payments, stripe_server
):
    """`payment_intent.payment_failed` with Stripe's `last_payment_error` (code card_declined,
    decline_code insufficient_funds): a charge still under way is failed with the issuer's
    reason, and a payer's failed attempt on a link is noted with it."""
    debtor, plan, saved = _active_card(client, db, stripe_server)
    stripe_server.decline_card(saved.payment_method_ref, "card_declined", "insufficient_funds")
    first = plan.installments[0]
    key = f"relance-installment-{first.id}-attempt-1"
    row = InstallmentCharge(
        installment_id=first.id,
        saved_method_id=saved.id,
        debtor_id=debtor.id,
        attempt=1,
        kind="card",
        provider="stripe",
        amount_minor=2500,
        currency="EUR",
        idempotency_key=key,
        status=charges.PROCESSING,  # the worker's pass had not applied the answer yet
    )
    db.add(row)
    db.flush()
    provider = StripeProvider(stripe_payments)

    def decline(metadata, idempotency_key):
        result = provider.charge_off_session(
            customer_ref=saved.customer_ref,
            payment_method_ref=saved.payment_method_ref,
            amount_minor=2500,
            currency="EUR",
            metadata=metadata,
            idempotency_key=idempotency_key,
        )
        assert (result.error_code, result.decline_code) == ("card_declined", "insufficient_funds")
        return stripe_server.intent(result.provider_ref)

    meta = charge_metadata(
        "stripe", debtor_id=debtor.id, installment_id=first.id, charge_key=key, kind="card"
    )
    intent = decline(meta, key)
    row.provider_ref = intent["id"]
    db.flush()

    answer = _deliver(client, StripeFake.event("payment_intent.payment_failed", intent))

    assert answer.json()["outcome"] == "charge_failed"
    db.refresh(row)
    assert (row.status, row.failure_code) == ("failed", "insufficient_funds")
    (text,) = gateway.texts_for(debtor)
    assert "there were not enough funds on the account" in text

    link = {
        "relance_kind": "link",
        "relance_provider": "stripe",
        "relance_link_id": "7",
        "relance_debtor_id": str(debtor.id),
    }
    noted = _deliver(
        client, StripeFake.event("payment_intent.payment_failed", decline(link, "link-7-try"))
    )
    assert noted.json()["outcome"] == "failure_noted"
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "payment.failed")).one()
    assert event.details["code"] == "insufficient_funds"
    assert event.details["decline_code"] == "insufficient_funds"
