"""reverse_payment: a reversed payment keeps no promise, and a held one gives back no credit."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select

from relance.db.models import AuditEvent, Task
from relance.followups.service import PROMISE_GRACE_DAYS, run_followups
from relance.ledger.reversal import reverse_payment
from relance.ledger.service import Expected, Hold, record_payment
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
