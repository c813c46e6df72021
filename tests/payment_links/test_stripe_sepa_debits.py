"""SEPA Direct Debit *debits* with the Stripe adapter against the fake's Stripe shapes: the
worker charges an installment off-session with the saved mandate (one idempotency key per
installment and attempt), the PaymentIntent stays `processing`, then the bank's answer arrives
days later as a signed `payment_intent.succeeded` (settles once) or
`payment_intent.payment_failed` with a SEPA failure code (the same follow-up as the sandbox's:
task, message with a link, and a reversal when it had settled). Forgeries store nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from payment_links.providers.stripe_provider import StripeProvider
from payment_links.wiring import install
from relance.db.models import Conversation, Payment, Task, WebhookEvent
from relance.followups.service import run_followups
from relance.ledger import ports as ledger_ports
from relance.ledger.service import open_balance
from relance.plans import mandates
from tests.console.conftest import login
from tests.factories import (
    make_debtor,
    make_installment_charge,
    make_invoice,
    make_plan,
    make_user,
)
from tests.support.installments import balanced, charges_of
from tests.support.stripe_fake import StripeFake

SECRET = "whsec_test_secret"
TODAY = date(2026, 3, 10)  # a Tuesday
MANDATE_TEXT = "En signant ce mandat, vous autorisez Relance Demo SAS à débiter votre compte."


@pytest.fixture
def stripe_payments(stripe_settings):
    previous = ledger_ports._payments
    install(StripeProvider(stripe_settings))
    yield stripe_settings
    ledger_ports._payments = previous


def _run(db, day):
    """A worker pass at 11:00 Paris time on `day` (inside the contact window on weekdays)."""
    return run_followups(db, day, now=datetime.combine(day, time(10, 0), UTC))


def _deliver(client, event, secret=SECRET):
    payload, header = StripeFake.signed(event, secret)
    return client.post("/stripe/webhook", content=payload, headers={"Stripe-Signature": header})


def _events(db):
    return db.scalar(select(func.count(WebhookEvent.id)))


def _debiting(client, db, stripe_server):
    """A 2 × 20 € plan whose first installment is due today, with a Stripe SEPA mandate made
    through the real path: setup-mode session, then the signed `setup_intent.succeeded`."""
    debtor = make_debtor(db, language="fr", email="d@example.com", channels=("sms",))
    invoice = make_invoice(db, debtor, 4000, due=TODAY - timedelta(days=40))
    plan = make_plan(db, debtor, [2000, 2000], first_due=TODAY, invoices=[invoice])
    mandates.start_sepa(
        db,
        debtor,
        plan.id,
        mandate_text=MANDATE_TEXT,
        locale="fr",
        return_url="http://t/portal",
        cancel_url="http://t/portal",
    )
    db.flush()
    saved = mandates.methods_of(db, debtor)[0]
    setup = stripe_server.complete_setup(saved.setup_ref, last4="3000")
    activated = _deliver(client, StripeFake.event("setup_intent.succeeded", setup))
    assert activated.json()["outcome"] == "mandate_active"
    db.refresh(saved)
    assert saved.status == "active" and saved.mandate_ref == setup["mandate"]
    return debtor, invoice, plan, saved


def _debited(client, db, stripe_server):
    """The worker's pass on the due date: one SEPA PaymentIntent, `processing`."""
    debtor, invoice, plan, saved = _debiting(client, db, stripe_server)
    first = plan.installments[0]
    report = _run(db, TODAY)
    assert report.debits_processing == [first.id] and report.charge_failures == []
    (charge,) = charges_of(db, first)
    return debtor, invoice, plan, saved, charge


def test_the_job_debits_the_mandate_through_stripe_and_the_intent_stays_processing(
    client, db, gateway, stripe_payments, stripe_server
):
    debtor, _, plan, saved, charge = _debited(client, db, stripe_server)
    first = plan.installments[0]

    (request,) = stripe_server.intent_requests()
    assert request.headers["idempotency-key"] == f"relance-installment-{first.id}-attempt-1"
    assert request.headers["idempotency-key"] == charge.idempotency_key
    sent = request.params
    assert (sent["amount"], sent["currency"]) == ("2000", "eur")
    assert (sent["customer"], sent["payment_method"], sent["mandate"]) == (
        saved.customer_ref,
        saved.payment_method_ref,
        saved.mandate_ref,
    )
    assert sent["allowed_payment_method_types"] == ["sepa_debit"]
    assert (sent["off_session"], sent["confirm"]) == ("true", "true")
    assert sent["metadata"]["relance_charge_key"] == charge.idempotency_key
    assert sent["metadata"]["relance_installment_id"] == str(first.id)

    intent = stripe_server.intent(charge.provider_ref)
    assert intent["status"] == "processing" and intent["payment_method_types"] == ["sepa_debit"]
    assert intent["mandate"] == saved.mandate_ref and intent["amount_received"] == 0
    assert (charge.status, charge.kind, charge.provider) == ("processing", "sepa_debit", "stripe")
    assert first.status == "due" and first.paid_minor == 0
    assert db.scalar(select(func.count(Payment.id)).where(Payment.debtor_id == debtor.id)) == 0

    # Stripe's own `payment_intent.processing` changes nothing; the next passes neither debit
    # again nor remind nor count the installment as missed while the bank answers.
    processing = _deliver(client, StripeFake.event("payment_intent.processing", intent))
    assert processing.status_code == 200 and processing.json()["outcome"] == "ignored"
    for day in (TODAY + timedelta(days=1), TODAY + timedelta(days=2)):
        later = _run(db, day)
        assert later.debits_processing == [] and later.charge_failures == []
    assert len(stripe_server.intent_requests()) == 1 and len(charges_of(db, first)) == 1
    assert all("/pay/" not in text for text in gateway.texts_for(debtor))  # no link needed


def test_a_retried_job_sends_the_same_key_and_stripe_answers_the_same_intent(
    client, db, gateway, stripe_payments, stripe_server
):
    """The pass dies after Stripe answered: the rerun claims the same attempt, sends the same
    key and the same parameters, and the fake (like Stripe) replays the first PaymentIntent
    instead of debiting twice. The rerun's row has a new id, as on PostgreSQL (a sequence never
    gives a rolled-back id again): the request named the row id, so Stripe refused the replay
    as the same key with other parameters, and the debit it had made was marked failed."""
    _, _, plan, saved = _debiting(client, db, stripe_server)
    first = plan.installments[0]
    db.commit()

    _run(db, TODAY)
    db.rollback()  # the worker died before its commit
    assert charges_of(db, first) == []
    # another worker's charge takes the next id in the meantime (what PostgreSQL's sequence does)
    make_installment_charge(
        db, plan.installments[1], saved, idempotency_key="another-worker", status="failed"
    )
    db.commit()
    _run(db, TODAY)
    db.commit()

    one, two = stripe_server.intent_requests()
    assert one.headers["idempotency-key"] == two.headers["idempotency-key"]
    assert one.params == two.params
    assert len(stripe_server.sepa_intents) == 1
    (charge,) = charges_of(db, first)
    assert charge.provider_ref == next(iter(stripe_server.sepa_intents))
    assert charge.status == "processing"


def test_payment_intent_succeeded_settles_the_installment_once(
    client, db, gateway, stripe_payments, stripe_server
):
    debtor, invoice, plan, _, charge = _debited(client, db, stripe_server)
    first = plan.installments[0]
    event = StripeFake.event(
        "payment_intent.succeeded", stripe_server.settle_debit(charge.provider_ref)
    )
    stored = _events(db)

    forged = _deliver(client, event, secret="whsec_forger")
    assert forged.status_code == 400 and _events(db) == stored
    db.expire_all()
    assert charge.status == "processing" and first.status == "due"

    answer = _deliver(client, event)
    assert answer.status_code == 200 and answer.json()["outcome"] == "recorded"
    db.expire_all()
    assert charge.status == "succeeded" and charge.settled_at is not None
    assert first.status == "paid" and invoice.paid_minor == 2000 and balanced(db, invoice)
    payment = db.scalars(select(Payment).where(Payment.debtor_id == debtor.id)).one()
    assert (payment.method, payment.provider, payment.provider_ref) == (
        "sepa_debit",
        "stripe",
        charge.provider_ref,
    )
    assert payment.amount_minor == 2000 and open_balance(db, debtor.id) == 2000

    replay = _deliver(client, event)
    assert replay.status_code == 200 and replay.json() == {"received": True, "duplicate": True}
    again = StripeFake.event("payment_intent.succeeded", stripe_server.intent(charge.provider_ref))
    assert _deliver(client, again).json()["outcome"] == "already_recorded"  # a new event id
    db.expire_all()
    assert db.scalar(select(func.count(Payment.id)).where(Payment.debtor_id == debtor.id)) == 1
    assert first.paid_minor == 2000 and invoice.paid_minor == 2000 and balanced(db, invoice)
    assert _run(db, TODAY + timedelta(days=1)).debits_processing == []


FAILURES = [
    (
        "insufficient_funds",
        "Insufficient funds on the account",
        "la provision du compte était insuffisante",
    ),
    ("account_closed", "Bank account closed", "le compte est clôturé"),
    (
        "debit_not_authorized",
        "The debtor told the bank the debit was not authorised",
        "vous lui avez indiqué que ce prélèvement n'était pas autorisé",
    ),
]


@pytest.mark.parametrize(("code", "words", "debtor_words"), FAILURES)
def test_payment_failed_days_later_starts_the_follow_up_once_and_reads_in_words(
    client, db, gateway, stripe_payments, stripe_server, code, words, debtor_words
):
    """The collector reads Stripe's failure code in words, and the debtor the bank's reason."""
    debtor, invoice, plan, _, charge = _debited(client, db, stripe_server)
    first = plan.installments[0]
    _run(db, TODAY + timedelta(days=1))
    failed = stripe_server.fail_debit(charge.provider_ref, code)
    assert failed["status"] == "requires_payment_method"
    assert failed["last_payment_error"]["code"] == code
    event = StripeFake.event("payment_intent.payment_failed", failed)

    forged = _deliver(client, event, secret="whsec_forger")
    assert forged.status_code == 400
    db.expire_all()
    assert charge.status == "processing" and db.scalars(select(Task)).all() == []

    answer = _deliver(client, event)
    assert answer.status_code == 200 and answer.json()["outcome"] == "charge_failed"
    db.expire_all()
    assert (charge.status, charge.failure_code) == ("failed", code)
    task = db.scalars(select(Task).where(Task.debtor_id == debtor.id)).one()
    assert task.details["reason"] == "charge_failed" and task.details["code"] == code
    assert task.details["late"] is False and task.details["kind"] == "sepa_debit"
    (text,) = gateway.texts_for(debtor)
    assert f"rejeté par votre banque : {debtor_words}." in text and "/pay/" in text
    assert first.status == "due" and invoice.paid_minor == 0 and balanced(db, invoice)
    assert open_balance(db, debtor.id) == 4000
    assert db.scalar(select(func.count(Payment.id)).where(Payment.debtor_id == debtor.id)) == 0

    assert _deliver(client, event).json() == {"received": True, "duplicate": True}
    redelivered = StripeFake.event("payment_intent.payment_failed", failed)
    assert _deliver(client, redelivered).json()["outcome"] == "already_failed"
    db.expire_all()
    assert len(db.scalars(select(Task).where(Task.debtor_id == debtor.id)).all()) == 1
    assert len(gateway.texts_for(debtor)) == 1
    # Not tried again with the same mandate: the installment falls back to its payment link.
    assert _run(db, TODAY + timedelta(days=2)).debits_processing == []
    assert len(stripe_server.intent_requests()) == 1

    # The collector reads the bank's reason in words on the debtor's page.
    conversation = db.scalars(
        select(Conversation).where(Conversation.debtor_id == debtor.id)
    ).first()
    assert conversation is not None
    assert login(client, make_user(db, "collector").email).status_code == 303
    page = client.get(f"/console/conversations/{conversation.id}")
    assert page.status_code == 200
    section = page.text.split('id="payment-methods"')[1].split("</section>")[0]
    assert f"{words} <code>{code}</code>" in section


def test_a_debit_returned_after_it_settled_is_reversed_like_the_sandbox_does(
    client, db, gateway, stripe_payments, stripe_server
):
    """The counterpart of the sandbox's late failure: settled by `payment_intent.succeeded`,
    returned three days later (`account_closed`), then the mandate goes inactive."""
    debtor, invoice, plan, saved, charge = _debited(client, db, stripe_server)
    first = plan.installments[0]
    settled = stripe_server.settle_debit(charge.provider_ref)
    assert (
        _deliver(client, StripeFake.event("payment_intent.succeeded", settled)).json()["outcome"]
        == "recorded"
    )
    db.expire_all()
    assert first.status == "paid" and open_balance(db, debtor.id) == 2000
    gateway.sent.clear()

    returned = stripe_server.fail_debit(charge.provider_ref, "account_closed")
    answer = _deliver(client, StripeFake.event("payment_intent.payment_failed", returned))

    assert answer.json()["outcome"] == "charge_failed"
    db.expire_all()
    assert charge.status == "failed" and charge.failure_code == "account_closed"
    payment = db.scalars(select(Payment).where(Payment.debtor_id == debtor.id)).one()
    assert payment.reversed_at is not None and payment.allocations == []
    assert first.status == "due" and first.paid_minor == 0
    assert invoice.paid_minor == 0 and invoice.status == "open" and balanced(db, invoice)
    assert open_balance(db, debtor.id) == 4000 and debtor.credit_minor == 0
    task = db.scalars(select(Task).where(Task.debtor_id == debtor.id)).one()
    assert task.details["late"] is True and task.details["code"] == "account_closed"
    assert any("rejeté par votre banque" in t for t in gateway.texts_for(debtor))

    inactive = dict(stripe_server.mandates[saved.mandate_ref], status="inactive")
    stopped = _deliver(client, StripeFake.event("mandate.updated", inactive))
    assert stopped.json()["outcome"] == "mandate_inactive"
    db.expire_all()
    assert saved.status == "inactive"
    second = plan.installments[1]
    assert _run(db, second.due_date).debits_processing == []
    assert len(stripe_server.intent_requests()) == 1


def test_a_debit_made_before_the_key_was_sent_still_settles_its_charge(
    client, db, gateway, stripe_payments, stripe_server
):
    """Debits already in flight when the metadata changed name their row (`relance_charge_id`),
    not their key: the bank's answer days later still finds the charge."""
    _, invoice, plan, _, charge = _debited(client, db, stripe_server)
    intent = stripe_server.settle_debit(charge.provider_ref)
    metadata = dict(intent["metadata"])
    metadata.pop("relance_charge_key")
    metadata["relance_charge_id"] = str(charge.id)
    answer = _deliver(
        client, StripeFake.event("payment_intent.succeeded", intent | {"metadata": metadata})
    )
    assert answer.status_code == 200 and answer.json()["outcome"] == "recorded"
    db.expire_all()
    assert charge.status == "succeeded" and plan.installments[0].status == "paid"
    assert invoice.paid_minor == 2000
