"""reverse_payment: a reversed payment keeps no promise, a held one gives back no credit, and a
dispute for part of a payment takes back only that part."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select

from relance.db.models import AuditEvent, Payment, Task
from relance.followups.service import PROMISE_GRACE_DAYS, run_followups
from relance.ledger.reversal import reverse_payment
from relance.ledger.service import Expected, Hold, open_balance, record_payment, standing
from tests.factories import make_debtor, make_invoice, make_promise

TODAY = date(2026, 3, 10)  # a Tuesday


def _pay(db, debtor, amount, ref, **kwargs):
    return record_payment(
        db,
        debtor_id=debtor.id,
        amount_minor=amount,
        currency="EUR",
        method="sepa_debit",
        provider="stripe",
        provider_ref=ref,
        thank=False,
        **kwargs,
    )


def test_a_promise_kept_by_a_returned_payment_is_pending_again(db, gateway):
    debtor = make_debtor(db, channels=("sms",))
    make_invoice(db, debtor, 9000, due=TODAY - timedelta(days=40))
    promise = make_promise(db, debtor, 3000, TODAY + timedelta(days=5))
    outcome = _pay(db, debtor, 3000, "pi_kept")
    assert promise.status == "kept"

    assert reverse_payment(db, outcome.payment, reason="MD06", actor="stripe:webhook")

    assert promise.status == "pending"
    reopened = db.scalars(select(AuditEvent).where(AuditEvent.action == "promise.reopened")).one()
    assert (reopened.entity_id, reopened.details["payment_id"]) == (
        str(promise.id),
        outcome.payment.id,
    )
    reversal = db.scalars(select(AuditEvent).where(AuditEvent.action == "payment.reversed")).one()
    assert reversal.details["promises_reopened"] == [promise.id]
    # The returned 30 € no longer count towards it: a later 10 € does not keep it.
    assert _pay(db, debtor, 1000, "pi_small").kept_promise_ids == []
    assert promise.status == "pending"
    assert _pay(db, debtor, 1500, "pi_more").kept_promise_ids == []
    assert _pay(db, debtor, 500, "pi_enough").kept_promise_ids == [promise.id]


def test_a_promise_kept_by_other_money_stays_kept(db, gateway):
    debtor = make_debtor(db, channels=("sms",))
    make_invoice(db, debtor, 9000, due=TODAY - timedelta(days=40))
    promise = make_promise(db, debtor, 3000, TODAY + timedelta(days=5))
    _pay(db, debtor, 3000, "pi_first")
    later = _pay(db, debtor, 1000, "pi_later")

    reverse_payment(db, later.payment, reason="MD06", actor="stripe:webhook")

    assert promise.status == "kept"
    assert db.scalars(select(AuditEvent).where(AuditEvent.action == "promise.reopened")).all() == []


def test_the_follow_up_breaks_a_reopened_promise_past_its_date(db, gateway, sandbox_payments):
    debtor = make_debtor(db, channels=("sms",))
    make_invoice(db, debtor, 9000, due=TODAY - timedelta(days=40))
    promise = make_promise(db, debtor, 3000, TODAY - timedelta(days=5))
    outcome = _pay(db, debtor, 3000, "pi_returned")
    reverse_payment(db, outcome.payment, reason="MD06", actor="stripe:webhook")

    assert promise.promised_date < TODAY - timedelta(days=PROMISE_GRACE_DAYS)
    report = run_followups(db, TODAY, now=datetime.combine(TODAY, time(10, 0), UTC))

    assert report.broken_promises == [promise.id] and promise.status == "broken"
    task = db.scalars(select(Task).where(Task.debtor_id == debtor.id)).one()
    assert task.details == {"reason": "broken_promise", "promise_id": promise.id}


def test_reversing_a_held_payment_removes_no_credit(db, gateway):
    debtor = make_debtor(db, channels=("sms",), credit_minor=500)
    make_invoice(db, debtor, 9000, due=TODAY - timedelta(days=40))
    hold = Hold(Expected(9000, "EUR", debtor.id), ["amount"])
    outcome = _pay(db, debtor, 100, "pi_held", hold=hold)
    assert outcome.held

    reverse_payment(db, outcome.payment, reason="lost", actor="stripe:webhook")

    db.refresh(debtor)
    assert debtor.credit_minor == 500
    reversal = db.scalars(select(AuditEvent).where(AuditEvent.action == "payment.reversed")).one()
    assert reversal.details["credit_removed_minor"] == 0


def test_part_of_a_payment_comes_back_once_its_credit_first_then_its_latest_allocations(
    db, gateway
):
    """A dispute for part of a payment (Stripe's `dispute.amount`) takes back that part only:
    first what the payment left as credit, then its allocations from the latest; the rest
    stays paid, the payment still counts for it, and the same dispute takes nothing twice."""
    debtor = make_debtor(db, channels=("sms",))
    older = make_invoice(db, debtor, 3000, due=TODAY - timedelta(days=60))
    newer = make_invoice(db, debtor, 4000, due=TODAY - timedelta(days=30))
    outcome = _pay(
        db, debtor, 8000, "pi_partly"
    )  # 30 € on the older, 40 € on the newer, 10 € credit
    payment = outcome.payment
    assert (older.status, newer.status, debtor.credit_minor) == ("paid", "paid", 1000)
    owed = open_balance(db, debtor.id)

    assert reverse_payment(
        db,
        payment,
        reason="dispute_lost:general",
        actor="stripe:webhook",
        amount_minor=2500,
        ref="du_1",
    )

    assert debtor.credit_minor == 0  # the 10 € credit first
    assert (newer.paid_minor, newer.status) == (2500, "open")  # then 15 € of the latest allocation
    assert (older.paid_minor, older.status) == (3000, "paid")
    assert open_balance(db, debtor.id) == owed + 1500  # the invoices owe what came back of them
    assert sum(a.amount_minor for a in payment.allocations) == 5500
    assert newer.paid_minor == sum(
        a.amount_minor for a in payment.allocations if a.invoice_id == newer.id
    )
    assert (payment.reversed_minor, payment.reversal_reason) == (2500, "dispute_lost:general")
    assert db.scalar(select(Payment.id).where(standing(), Payment.id == payment.id)) == payment.id
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "payment.reversed")).one()
    assert (event.details["amount_minor"], event.details["partial"]) == (2500, True)
    assert event.details["credit_removed_minor"] == 1000 and event.details["ref"] == "du_1"
    assert [(a["invoice_id"], a["amount_minor"]) for a in event.details["allocations"]] == [
        (newer.id, 1500)
    ]

    # The same dispute again takes nothing; what is left of the payment can still come back.
    again = reverse_payment(db, payment, reason="x", actor="t", amount_minor=2500, ref="du_1")
    assert not again and payment.reversed_minor == 2500 and newer.paid_minor == 2500
    assert reverse_payment(db, payment, reason="MD06", actor="stripe:webhook")
    assert payment.reversed_minor == 8000 and payment.allocations == []
    assert (older.paid_minor, newer.paid_minor, debtor.credit_minor) == (0, 0, 0)
    assert db.scalar(select(Payment.id).where(standing(), Payment.id == payment.id)) is None
    assert not reverse_payment(db, payment, reason="MD06", actor="stripe:webhook")
