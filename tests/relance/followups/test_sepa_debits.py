"""SEPA Direct Debit plans with the sandbox provider: mandate, idempotent debits, immediate and
late failures (follow-up, ledger reversed and balanced), revocation, forged events."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from payment_links import webhooks
from payment_links.providers.sandbox import (
    SandboxProvider,
    setup_succeeded_event,
    signature_header,
)
from payment_links.wiring import install
from relance.db.models import AuditEvent, Payment, Task, WebhookEvent
from relance.errors import Conflict, NotFound, PolicyViolation
from relance.followups.service import run_followups
from relance.ledger.models import SavedPaymentMethod
from relance.ledger.service import open_balance
from relance.plans import mandates
from tests.factories import make_debtor, make_invoice, make_plan
from tests.support.installments import balanced, charges_of

TODAY = date(2026, 3, 10)  # a Tuesday
IBAN = "DE89370400440532013000"
MANDATE_TEXT = "En signant ce mandat, vous autorisez Relance Demo SAS à débiter votre compte."


def _run(db, day):
    return run_followups(db, day, now=datetime.combine(day, time(10, 0), UTC))


def _deliver(db, settings, event):
    payload = json.dumps(event).encode()
    return webhooks.process(
        db,
        payload,
        signature_header(payload, settings.stripe_webhook_secret),
        secret=settings.stripe_webhook_secret,
        provider=SandboxProvider(settings),
    )


def _plan(db, **debtor_columns):
    debtor = make_debtor(db, channels=("sms",), **debtor_columns)
    invoice = make_invoice(db, debtor, 4000, due=TODAY - timedelta(days=40))
    plan = make_plan(db, debtor, [2000, 2000], first_due=TODAY, invoices=[invoice])
    return debtor, invoice, plan


def _mandate(db, settings, debtor, plan, outcome="ok") -> SavedPaymentMethod:
    """Through the real path: pending row and provider page, then the signed setup event."""
    url = mandates.start_sepa(
        db,
        debtor,
        plan.id,
        mandate_text=MANDATE_TEXT,
        locale="fr",
        return_url="http://localhost:8000/portal/t?done=mandate",
        cancel_url="http://localhost:8000/portal/t",
    )
    saved = mandates.methods_of(db, debtor)[0]
    assert saved.status == "pending" and url.endswith(
        f"/pay/sandbox/mandate/{saved.setup_ref}"
        "?return=http%3A%2F%2Flocalhost%3A8000%2Fportal%2Ft%3Fdone%3Dmandate"
        "&cancel=http%3A%2F%2Flocalhost%3A8000%2Fportal%2Ft"
    )
    event = setup_succeeded_event(saved.setup_ref, saved, outcome=outcome, last4=IBAN[-4:])
    assert _deliver(db, settings, event)["outcome"] == "mandate_active"
    return saved


@pytest.fixture
def sandbox(settings, sandbox_payments):
    return settings


def test_mandate_keeps_references_text_and_last_four_never_the_iban(db, sandbox):
    debtor, _, plan = _plan(db)
    saved = _mandate(db, sandbox, debtor, plan)

    assert (saved.status, saved.kind, saved.last4) == ("active", "sepa_debit", "3000")
    assert saved.mandate_reference.startswith("SBX-") and saved.mandate_text == MANDATE_TEXT
    assert saved.payment_method_ref.startswith("pm_sandbox_sepa_ok_")
    stored = json.dumps(
        [str(getattr(saved, c.key)) for c in SavedPaymentMethod.__table__.columns]
        + [e.details for e in db.scalars(select(AuditEvent)).all()]
        + [e.payload for e in db.scalars(select(WebhookEvent)).all()],
        default=str,
    )
    assert IBAN not in stored and IBAN[:-4] not in stored


def test_sepa_debit_is_processing_then_settles_by_event(db, gateway, sandbox):
    debtor, invoice, plan = _plan(db)
    _mandate(db, sandbox, debtor, plan)
    first = plan.installments[0]

    report = _run(db, TODAY)
    assert report.debits_processing == [first.id] and report.charged == []
    assert first.status == "due" and db.scalar(select(func.count(Payment.id))) == 0
    (charge,) = charges_of(db, first)
    assert charge.status == "processing" and charge.kind == "sepa_debit"

    later = _run(db, TODAY)
    assert later.provider_events == 1 and later.debits_processing == []
    assert first.status == "paid" and charge.status == "succeeded"
    payment = db.scalars(select(Payment).where(Payment.debtor_id == debtor.id)).one()
    assert (payment.method, payment.provider_ref) == ("sepa_debit", charge.provider_ref)
    assert _run(db, TODAY).provider_events == 0 and len(charges_of(db, first)) == 1
    assert balanced(db, invoice)


def test_a_retried_job_charges_once(db, gateway, settings):
    """A pass that dies after the provider call: the rerun sends the same idempotency key, gets
    the same PaymentIntent, and one payment is recorded."""
    calls: list[tuple[str, str | None]] = []

    class Recording(SandboxProvider):
        def charge_off_session(self, **kwargs):
            result = super().charge_off_session(**kwargs)
            calls.append((kwargs["idempotency_key"], result.provider_ref))
            return result

    install(Recording(settings))
    debtor, _, plan = _plan(db)
    _mandate(db, settings, debtor, plan)
    first = plan.installments[0]
    db.commit()

    _run(db, TODAY)
    db.rollback()  # the worker died before its commit
    assert charges_of(db, first) == []
    _run(db, TODAY)
    db.commit()
    _run(db, TODAY)  # settles
    _run(db, TODAY)  # and nothing more

    assert len(calls) == 2 and calls[0] == calls[1]
    assert calls[0][0] == f"relance-installment-{first.id}-attempt-1"
    assert db.scalar(select(func.count(Payment.id)).where(Payment.debtor_id == debtor.id)) == 1
    assert first.status == "paid"


def test_immediate_failure_starts_the_follow_up_once(db, gateway, sandbox):
    debtor, _, plan = _plan(db)
    _mandate(db, sandbox, debtor, plan, outcome="fail")
    first = plan.installments[0]

    report = _run(db, TODAY)
    again = _run(db, TODAY)

    assert report.charge_failures == [first.id] and again.charge_failures == []
    (charge,) = charges_of(db, first)
    assert (charge.status, charge.failure_code) == ("failed", "insufficient_funds")
    task = db.scalars(select(Task).where(Task.debtor_id == debtor.id)).one()
    assert (
        task.details["reason"] == "charge_failed" and task.details["code"] == "insufficient_funds"
    )
    (text,) = gateway.texts_for(debtor)
    assert "rejeté par votre banque : la provision du compte était insuffisante." in text
    assert "/pay/" in text
    assert first.status == "due" and open_balance(db, debtor.id) == 4000


def test_late_failure_reverses_the_payment_reopens_and_follows_up(db, gateway, sandbox):
    debtor, invoice, plan = _plan(db)
    saved = _mandate(db, sandbox, debtor, plan, outcome="late")
    first = plan.installments[0]
    _run(db, TODAY)
    _run(db, TODAY)
    (charge,) = charges_of(db, first)
    assert first.status == "paid" and invoice.paid_minor == 2000
    assert open_balance(db, debtor.id) == 2000
    gateway.sent.clear()

    # Three days after it settled (on the test's clock) the bank returns the debit.
    charge.settled_at = datetime.combine(TODAY, time(10, 0), UTC)
    assert _run(db, TODAY + timedelta(days=2)).provider_events == 0
    report = _run(db, TODAY + timedelta(days=3))

    assert report.provider_events == 2  # payment_failed, then mandate.updated (inactive)
    assert charge.status == "failed" and charge.failure_code == "account_closed"
    payment = db.scalars(select(Payment).where(Payment.debtor_id == debtor.id)).one()
    assert payment.reversed_at is not None and payment.allocations == []
    assert first.status == "due" and first.paid_minor == 0
    assert invoice.paid_minor == 0 and invoice.status == "open" and balanced(db, invoice)
    assert open_balance(db, debtor.id) == 4000 and debtor.credit_minor == 0
    task = db.scalars(select(Task).where(Task.debtor_id == debtor.id)).one()
    assert task.details["late"] is True
    assert any(
        "rejeté par votre banque : le compte est clôturé." in t for t in gateway.texts_for(debtor)
    )
    assert saved.status == "inactive"
    # The bank closed the account: the next installment is not debited, it gets a link.
    second = plan.installments[1]
    reminder = _run(db, second.due_date - timedelta(days=1))
    assert reminder.installment_reminders == [second.id]
    assert "/pay/" in gateway.texts_for(debtor)[-1]
    assert _run(db, second.due_date).debits_processing == []


def test_the_debtor_revokes_the_mandate(db, gateway, sandbox):
    debtor, _, plan = _plan(db)
    saved = _mandate(db, sandbox, debtor, plan)
    other, _, _ = _plan(db)

    with pytest.raises(NotFound) as foreign:
        mandates.revoke(db, other, saved.id)
    assert foreign.value.code == "mandate_not_found" and saved.status == "active"
    mandates.revoke(db, debtor, saved.id)
    with pytest.raises(Conflict) as twice:
        mandates.revoke(db, debtor, saved.id)

    assert twice.value.code == "mandate_stopped"
    assert saved.status == "revoked" and saved.revoked_at is not None
    assert (
        db.scalar(
            select(AuditEvent.actor).where(
                AuditEvent.action == "mandate.revoked", AuditEvent.entity_id == str(saved.id)
            )
        )
        == "debtor"
    )
    report = _run(db, TODAY)
    assert report.debits_processing == [] and charges_of(db, plan.installments[0]) == []


def test_a_forged_setup_event_is_refused_and_stores_nothing(db, sandbox):
    debtor, _, plan = _plan(db)
    mandates.start_sepa(
        db,
        debtor,
        plan.id,
        mandate_text=MANDATE_TEXT,
        locale="fr",
        return_url="http://x/portal",
        cancel_url="http://x/portal",
    )
    saved = mandates.methods_of(db, debtor)[0]
    event = setup_succeeded_event(saved.setup_ref, saved, outcome="ok", last4="3000")
    payload = json.dumps(event).encode()

    with pytest.raises(webhooks.InvalidSignature):
        webhooks.process(
            db,
            payload,
            signature_header(payload, "whsec_forger"),
            secret=sandbox.stripe_webhook_secret,
            provider=SandboxProvider(sandbox),
        )
    assert saved.status == "pending" and saved.payment_method_ref is None
    assert db.scalar(select(func.count(WebhookEvent.id))) == 0


def test_a_malformed_setup_event_is_refused_and_stores_nothing(db, sandbox):
    debtor, _, plan = _plan(db)
    mandates.start_sepa(
        db,
        debtor,
        plan.id,
        mandate_text=MANDATE_TEXT,
        locale="fr",
        return_url="http://x/portal",
        cancel_url="http://x/portal",
    )
    saved = mandates.methods_of(db, debtor)[0]
    event = setup_succeeded_event(saved.setup_ref, saved, outcome="ok", last4="3000")
    del event["data"]["object"]["mandate"]

    with pytest.raises(webhooks.MalformedEvent):
        _deliver(db, sandbox, event)
    assert saved.status == "pending"
    assert db.scalar(select(func.count(WebhookEvent.id))) == 0


@pytest.mark.parametrize(
    ("columns", "currency"), [({"country": "US"}, "EUR"), ({"country": "FR"}, "USD")]
)
def test_direct_debit_is_offered_only_for_euro_plans_in_the_euro_zone(
    db, sandbox, columns, currency
):
    debtor = make_debtor(db, **columns)
    invoice = make_invoice(db, debtor, 4000, currency=currency)
    plan = make_plan(db, debtor, [2000, 2000], invoices=[invoice], currency=currency)

    with pytest.raises(PolicyViolation) as refused:
        mandates.start_sepa(
            db,
            debtor,
            plan.id,
            mandate_text=MANDATE_TEXT,
            locale="en",
            return_url="http://x",
            cancel_url="http://x",
        )
    assert refused.value.code == "sepa_not_available"
    assert mandates.methods_of(db, debtor) == []
