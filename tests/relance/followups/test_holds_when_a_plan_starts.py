"""A plan that starts running while a dispute on its invoices is open is held from its first day.

The debtor's dispute holds the instalments of the plans running when it is registered
(`relance/plans/holds.py`). A plan that starts later (a request a collector approves after the
debtor disputed one of its invoices; a plan agreed while a dispute on the whole account is
open) got no hold: the follow-up pass reminded, charged and missed the instalments that ask for
the contested money. It now takes the holds of every open dispute over it when it becomes
active, as if it had been running when the dispute came."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from datetime import time as clock

from sqlalchemy import select
from sqlalchemy.orm import Session

from payment_links.providers.sandbox import card_method_ref
from relance.db.models import AuditEvent
from relance.disputes.service import create_dispute, decide_dispute
from relance.followups.service import run_followups
from relance.ledger.reversal import reverse_payment
from relance.ledger.service import record_payment
from relance.plans.service import Proposal, create_plan, decide_approval, request_approval
from tests.factories import make_debtor, make_invoice, make_mandate, make_plan
from tests.support.installments import charges_of

TODAY = date(2026, 3, 10)  # a Tuesday
FIRST_DUE = TODAY + timedelta(days=2)


def _proposal(amounts: tuple[int, ...]) -> Proposal:
    return Proposal(
        installments=len(amounts),
        frequency="monthly",
        amounts=amounts,
        due_dates=tuple(FIRST_DUE + timedelta(days=28 * i) for i in range(len(amounts))),
        currency="EUR",
    )


def _pass(db: Session, day: date):
    return run_followups(db, day, now=datetime.combine(day, clock(10, 0), UTC))


def test_a_plan_approved_after_the_debtor_disputed_one_of_its_invoices_holds_its_share(
    db: Session, gateway, sandbox_payments
) -> None:
    """The debtor asks for 3 x 20 € over a 30 € and a 30 € invoice, then contests the second
    while the request waits for a collector. Approved, the plan holds its last two instalments
    (the contested 30 €, in whole instalments); the first is charged on its date."""
    debtor = make_debtor(db, channels=("sms",))
    kept = make_invoice(db, debtor, 3000, due=TODAY - timedelta(days=60))
    contested = make_invoice(db, debtor, 3000, due=TODAY - timedelta(days=30))
    plan = request_approval(db, debtor, _proposal((2000, 2000, 2000)), reason="outside_limits")
    assert plan.invoice_ids == [kept.id, contested.id]
    dispute = create_dispute(
        db, debtor, reason="defective", details="cassé", invoice_id=contested.id, actor="debtor"
    )
    assert [inst.hold_id for inst in plan.installments] == [None, None, None]  # not running yet

    decide_approval(db, plan, approve=True, actor="collector:ann")

    first, second, third = plan.installments
    assert (first.hold_id, second.hold_id, third.hold_id) == (None, dispute.id, dispute.id)
    held = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "installment.held").order_by(AuditEvent.id)
    ).all()
    assert [(e.entity_id, e.details["dispute_id"]) for e in held] == [
        (str(second.id), dispute.id),
        (str(third.id), dispute.id),
    ]
    make_mandate(
        db, debtor, plan, kind="card", payment_method_ref=card_method_ref("4242424242424242")
    )
    assert _pass(db, FIRST_DUE).charged == [first.id]
    for inst in (second, third):
        report = _pass(db, inst.due_date)
        assert (report.charged, report.installment_reminders) == ([], [])
        assert charges_of(db, inst) == []
    assert _pass(db, third.due_date + timedelta(days=10)).missed_installments == []

    # Still owed: the hold ends with the decision, and the plan asks for them again.
    decide_dispute(db, dispute, upheld=False, note="working on arrival", actor="collector:ann")
    assert _pass(db, third.due_date + timedelta(days=11)).charged == [second.id, third.id]


def test_a_plan_agreed_while_the_whole_account_is_disputed_is_held_whole(
    db: Session, gateway, sandbox_payments
) -> None:
    """A dispute that names no invoice (the debtor has several and did not say which) is on the
    whole account: a plan agreed meanwhile asks for nothing until it is decided."""
    debtor = make_debtor(db)
    make_invoice(db, debtor, 3000)
    make_invoice(db, debtor, 3000)
    dispute = create_dispute(db, debtor, reason="other", details="je conteste", actor="debtor")

    plan = create_plan(db, debtor, _proposal((3000, 3000)), actor="bot")

    assert [inst.hold_id for inst in plan.installments] == [dispute.id, dispute.id]
    assert _pass(db, FIRST_DUE).charged == [] and _pass(db, FIRST_DUE).installment_reminders == []


def test_a_plan_agreed_over_the_uncontested_invoices_holds_nothing(db: Session) -> None:
    """An invoice under dispute is out of what a new plan covers (it is not open): the plan asks
    for none of the contested money, and nothing of it is held."""
    debtor = make_debtor(db)
    kept = make_invoice(db, debtor, 3000)
    contested = make_invoice(db, debtor, 3000)
    create_dispute(
        db, debtor, reason="not_received", details="", invoice_id=contested.id, actor="debtor"
    )

    plan = create_plan(db, debtor, _proposal((1500, 1500)), actor="bot")

    assert plan.invoice_ids == [kept.id]
    assert [inst.hold_id for inst in plan.installments] == [None, None]


def test_a_pending_plan_rejected_holds_nothing(db: Session) -> None:
    debtor = make_debtor(db)
    invoice = make_invoice(db, debtor, 6000)
    plan = request_approval(db, debtor, _proposal((3000, 3000)), reason="outside_limits")
    create_dispute(db, debtor, reason="other", details="", invoice_id=invoice.id, actor="debtor")

    decide_approval(db, plan, approve=False, actor="collector:ann")

    assert [inst.hold_id for inst in plan.installments] == [None, None]


def test_a_completed_plan_active_again_after_a_reversal_is_held_by_an_account_dispute(
    db: Session, gateway, sandbox_payments
) -> None:
    """The last instalment of a completed plan was paid by a SEPA debit that fails later: the
    plan runs again for it. The debtor meanwhile contests their account (two other invoices,
    neither named): the instalment waits for the decision like the rest of the account."""
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 4000, due=TODAY - timedelta(days=60))
    plan = make_plan(db, debtor, [2000, 2000], first_due=FIRST_DUE, invoices=[invoice])
    payments = [
        record_payment(
            db,
            debtor_id=debtor.id,
            amount_minor=2000,
            currency="EUR",
            method="sepa_debit",
            provider="stripe",
            provider_ref=f"pi_sepa_{inst.seq}",
            installment_id=inst.id,
            thank=False,
        ).payment
        for inst in plan.installments
    ]
    assert plan.status == "completed"
    make_invoice(db, debtor, 5000)
    make_invoice(db, debtor, 7000)
    dispute = create_dispute(db, debtor, reason="other", details="", actor="debtor")
    assert dispute.invoice_id is None

    assert reverse_payment(db, payments[1], reason="sepa_failed", actor="stripe")

    first, second = plan.installments
    assert (plan.status, second.status) == ("active", "due")
    assert (first.hold_id, second.hold_id) == (None, dispute.id)
    report = _pass(db, second.due_date + timedelta(days=10))
    assert (report.charged, report.missed_installments) == ([], [])
