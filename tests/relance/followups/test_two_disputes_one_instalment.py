"""Two open disputes over one plan instalment: the debtor's (they contest the invoice) and a
refund's (the creditor gave back money the instalment had been paid with).

An instalment names one dispute that holds it. The one holding it first keeps it ("instalments
another open dispute holds are left to it", `relance/plans/holds.py`), whichever came first,
and when it is decided the instalment passes to the other if that one is still open: neither
decision alone makes due again money the other still questions. A refund used to take over an
instalment the debtor's dispute held, so the creditor's "still owed" on the refund had the
card charged for an invoice the debtor contested, before anyone had looked at their dispute."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from datetime import time as clock

from sqlalchemy import select
from sqlalchemy.orm import Session

from payment_links.providers.sandbox import card_method_ref
from relance.db.models import AuditEvent, Dispute
from relance.disputes.service import REFUNDED, create_dispute, decide_dispute
from relance.followups.refunds import Refund, refunded
from relance.followups.service import run_followups
from relance.ledger.service import record_payment
from tests.factories import make_debtor, make_invoice, make_mandate, make_plan

TODAY = date(2026, 3, 10)  # a Tuesday
PLAN_DUE = TODAY + timedelta(days=2)


def _pass(db: Session, day: date):
    return run_followups(db, day, now=datetime.combine(day, clock(10, 0), UTC))


def _plan_paid_by_card(db: Session, paid: int):
    """A 40 € invoice in two 20 € instalments, `paid` of the first paid by card through its
    link, a card kept for the plan."""
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 4000, due=TODAY - timedelta(days=40))
    plan = make_plan(db, debtor, [2000, 2000], first_due=PLAN_DUE, invoices=[invoice])
    payment = record_payment(
        db,
        debtor_id=debtor.id,
        amount_minor=paid,
        currency="EUR",
        method="card",
        provider="stripe",
        provider_ref=f"pi_{debtor.id}",
        installment_id=plan.installments[0].id,
        thank=False,
    ).payment
    make_mandate(
        db, debtor, plan, kind="card", payment_method_ref=card_method_ref("4242424242424242")
    )
    return debtor, invoice, plan, payment


def _refund(db: Session, payment, amount: int) -> Dispute:
    outcome = refunded(
        db,
        payment,
        Refund(
            ref=f"re_{payment.id}",
            status="succeeded",
            reason=None,
            amount_minor=amount,
            currency="eur",
        ),
        actor="stripe",
    )
    assert outcome == "payment_refunded"
    return db.scalars(
        select(Dispute).where(Dispute.debtor_id == payment.debtor_id, Dispute.reason == REFUNDED)
    ).one()


def _contest(db: Session, debtor, invoice) -> Dispute:
    return create_dispute(
        db,
        debtor,
        reason="not_received",
        details="jamais livré",
        invoice_id=invoice.id,
        actor="debtor",
    )


def test_a_refund_leaves_an_instalment_the_debtors_dispute_holds_to_it(
    db: Session, gateway, sandbox_payments
) -> None:
    debtor, invoice, plan, payment = _plan_paid_by_card(db, 1000)
    first, second = plan.installments
    contested = _contest(db, debtor, invoice)
    assert (first.hold_id, second.hold_id) == (contested.id, contested.id)

    refund = _refund(db, payment, 1000)

    assert (first.status, first.paid_minor) == ("due", 0)
    assert (first.hold_id, second.hold_id) == (contested.id, contested.id)  # left to it
    (recorded,) = db.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "installment.held",
            AuditEvent.details["dispute_id"].as_integer() == refund.id,
        )
    )
    assert recorded.entity_id == str(first.id) and recorded.details["behind"] == contested.id

    # The creditor says the refunded money is still owed: the debtor still contests the
    # invoice, so neither the invoice nor the instalment is asked for.
    decide_dispute(db, refund, upheld=False, note="refunded by mistake", actor="collector:ann")
    assert invoice.status == "disputed"
    assert first.hold_id == contested.id
    assert _pass(db, PLAN_DUE).charged == []

    # Owed after all: both instalments are asked again.
    decide_dispute(db, contested, upheld=False, note="delivered", actor="collector:ann")
    assert invoice.status == "open"
    assert _pass(db, PLAN_DUE + timedelta(days=7)).charged == [first.id]


def test_the_debtors_dispute_decided_first_passes_the_refunded_instalment_to_the_refund(
    db: Session, gateway, sandbox_payments
) -> None:
    debtor, invoice, plan, payment = _plan_paid_by_card(db, 1000)
    first, second = plan.installments
    contested = _contest(db, debtor, invoice)
    refund = _refund(db, payment, 1000)

    decide_dispute(db, contested, upheld=False, note="delivered", actor="collector:ann")

    assert (first.hold_id, second.hold_id) == (refund.id, contested.id)
    assert invoice.status == "disputed"  # the refund's decision is still to come
    monday = second.due_date + timedelta(days=2)  # it falls on a Saturday
    report = _pass(db, monday)
    assert (report.charged, report.missed_installments) == ([second.id], [])

    decide_dispute(db, refund, upheld=False, note="still owed", actor="collector:ann")
    assert _pass(db, monday + timedelta(days=1)).charged == [first.id]


def test_a_debtors_dispute_takes_the_instalment_a_refund_held_once_the_refund_is_decided(
    db: Session, gateway, sandbox_payments
) -> None:
    """The other order: the refund first (it holds the instalment it reopened), then the debtor
    contests the invoice (their dispute holds the other instalment, the first left to the
    refund). The refund decided, the debtor's dispute holds the first one too."""
    debtor, invoice, plan, payment = _plan_paid_by_card(db, 2000)
    first, second = plan.installments
    refund = _refund(db, payment, 2000)
    contested = _contest(db, debtor, invoice)
    assert (first.hold_id, second.hold_id) == (refund.id, contested.id)

    decide_dispute(db, refund, upheld=False, note="refunded by mistake", actor="collector:ann")

    assert invoice.status == "disputed"
    assert (first.hold_id, second.hold_id) == (contested.id, contested.id)
    report = _pass(db, PLAN_DUE)
    assert (report.charged, report.installment_reminders) == ([], [])

    decide_dispute(db, contested, upheld=False, note="delivered", actor="collector:ann")
    assert _pass(db, PLAN_DUE + timedelta(days=7)).charged == [first.id]
