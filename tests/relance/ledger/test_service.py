"""record_payment: allocation order, partial and over-payments, dunning stop, promises, plans."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from relance.db.models import AuditEvent, Payment, PaymentAllocation, Task
from relance.ledger.reconciliation import open_reconciliation_task
from relance.ledger.service import open_balance, record_payment
from tests.factories import make_debtor, make_invoice, make_plan, make_promise

TODAY = date(2026, 3, 10)


def _pay(db, debtor, amount, ref, **kwargs):
    return record_payment(
        db,
        debtor_id=debtor.id,
        amount_minor=amount,
        currency="EUR",
        method="transfer",
        provider="bank",
        provider_ref=ref,
        **kwargs,
    )


def test_oldest_invoice_is_paid_first_and_leaves_dunning(db, gateway):
    debtor = make_debtor(db, channels=("sms",))
    newer = make_invoice(db, debtor, 5000, due=TODAY - timedelta(days=5))
    older = make_invoice(db, debtor, 3000, due=TODAY - timedelta(days=40))
    older.dunning_paused_until = TODAY + timedelta(days=3)

    outcome = _pay(db, debtor, 4000, "bank:r1")

    assert outcome.created
    assert older.status == "paid" and older.paid_minor == 3000 and older.paid_at is not None
    assert older.dunning_paused_until is None
    assert newer.status == "open" and newer.paid_minor == 1000 and newer.balance_minor == 4000
    assert [(a.invoice_id, a.amount_minor) for a in outcome.payment.allocations] == [
        (older.id, 3000),
        (newer.id, 1000),
    ]
    assert outcome.paid_invoice_ids == [older.id]
    assert open_balance(db, debtor.id) == 4000


def test_named_invoices_come_first(db, gateway):
    debtor = make_debtor(db, channels=("sms",))
    older = make_invoice(db, debtor, 3000, due=TODAY - timedelta(days=40))
    newer = make_invoice(db, debtor, 5000, due=TODAY - timedelta(days=5))

    _pay(db, debtor, 5000, "bank:r2", invoice_ids=[newer.id])

    assert newer.status == "paid"
    assert older.paid_minor == 0 and older.status == "open"


def test_disputed_invoice_only_paid_when_named(db, gateway):
    debtor = make_debtor(db, channels=("sms",))
    disputed = make_invoice(db, debtor, 3000, due=TODAY - timedelta(days=40), status="disputed")
    normal = make_invoice(db, debtor, 2000, due=TODAY - timedelta(days=5))

    _pay(db, debtor, 2000, "bank:r3")

    assert disputed.paid_minor == 0
    assert normal.status == "paid"


def test_overpayment_is_kept_as_credit(db, gateway):
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 2500, due=TODAY)

    outcome = _pay(db, debtor, 4000, "bank:r4")

    assert invoice.status == "paid"
    assert outcome.credited_minor == 1500
    assert debtor.credit_minor == 1500
    actions = db.scalars(select(AuditEvent.action).where(AuditEvent.debtor_id == debtor.id)).all()
    assert {"payment.recorded", "invoice.paid", "debtor.credit_added"} <= set(actions)


def test_same_provider_reference_is_recorded_once(db, gateway):
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 5000, due=TODAY)

    first = _pay(db, debtor, 2000, "pi_same")
    second = _pay(db, debtor, 2000, "pi_same")

    assert first.created and not second.created
    assert second.payment.id == first.payment.id
    assert invoice.paid_minor == 2000
    assert db.scalar(select(Payment.id).where(Payment.provider_ref == "pi_same")) is not None
    assert len(db.scalars(select(Payment).where(Payment.debtor_id == debtor.id)).all()) == 1


def test_installment_payment_then_plan_completed(db, gateway):
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 9000, due=TODAY - timedelta(days=60))
    plan = make_plan(db, debtor, [3000, 3000, 3000], first_due=TODAY, invoices=[invoice])
    first, second, third = plan.installments

    _pay(db, debtor, 3000, "pi_i1", installment_id=second.id)
    assert second.status == "paid" and first.status == "due"
    alloc = db.scalars(
        select(PaymentAllocation).where(PaymentAllocation.installment_id == second.id)
    ).one()
    assert alloc.invoice_id == invoice.id and alloc.amount_minor == 3000

    _pay(db, debtor, 1000, "pi_i2")  # no target: the oldest open installment, partially
    assert first.status == "partial" and first.paid_minor == 1000

    outcome = _pay(db, debtor, 5000, "pi_i3")
    assert first.status == "paid" and third.status == "paid"
    assert plan.status == "completed" and outcome.completed_plan_ids == [plan.id]
    assert invoice.status == "paid"


def test_payment_keeps_a_pending_promise(db, gateway):
    debtor = make_debtor(db, channels=("sms",))
    make_invoice(db, debtor, 8000, due=TODAY - timedelta(days=20))
    promise = make_promise(db, debtor, 3000, TODAY + timedelta(days=5))

    partial = _pay(db, debtor, 1000, "bank:p1")
    assert promise.status == "pending" and not partial.kept_promise_ids
    outcome = _pay(db, debtor, 2000, "bank:p2")

    assert promise.status == "kept"
    assert outcome.kept_promise_ids == [promise.id]


def test_thank_you_goes_out_on_the_debtor_channel(db, gateway):
    debtor = make_debtor(db, language="en", channels=("sms",))
    make_invoice(db, debtor, 4200, due=TODAY)

    _pay(db, debtor, 4200, "bank:t1")

    texts = gateway.texts_for(debtor)
    assert len(texts) == 1
    assert "42.00" in texts[0]
    sent = db.scalars(
        select(AuditEvent).where(
            AuditEvent.debtor_id == debtor.id, AuditEvent.action == "notify.sent"
        )
    ).one()
    assert sent.details["response"] == "utter_payment_thanks"


def test_no_reachable_contact_still_records_the_payment(db, gateway):
    debtor = make_debtor(db)
    invoice = make_invoice(db, debtor, 1000, due=TODAY)

    outcome = _pay(db, debtor, 1000, "bank:n1")

    assert outcome.created and invoice.status == "paid"
    assert gateway.sent == []


def test_already_paid_claim_opens_one_task_pauses_dunning_and_closes_on_payment(db, gateway):
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 6000, due=TODAY - timedelta(days=10))

    task = open_reconciliation_task(
        db, debtor_id=debtor.id, claimed_date="2026-03-08", reference="VIR123", today=TODAY
    )
    again = open_reconciliation_task(db, debtor_id=debtor.id, reference="VIR123bis", today=TODAY)

    assert again.id == task.id and len(task.details["claims"]) == 2
    assert task.kind == "reconciliation" and task.status == "open"
    assert invoice.dunning_paused_until == TODAY + timedelta(days=7)
    assert task.details["pause_until"] == "2026-03-17"

    _pay(db, debtor, 6000, "bank:VIR123")
    db.flush()
    assert db.get(Task, task.id).status == "done"
    assert task.details["payment_ids"]
