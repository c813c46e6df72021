"""A debtor's dispute on an invoice of a running payment plan holds the plan's collection of it.

The dispute pauses dunning on the invoice; the plan's own follow-ups (the reminder the day
before, the off-session charge of the card kept for the plan, "missed" and the plan broken)
must not go on for money the debtor contests either. Rejected, the instalments are due again
(grace from the decision); upheld, the plan stops asking for the cancelled invoice's share.
Through the dispute service, the follow-up pass with the sandbox card, and the sandbox checkout
for an instalment paid by its link."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from datetime import time as clock

from sqlalchemy import select

from payment_links.providers.sandbox import card_method_ref
from payment_links.service import create_link
from relance.db.models import AuditEvent, Task
from relance.disputes.service import create_dispute, decide_dispute
from relance.followups.service import run_followups
from tests.factories import make_debtor, make_invoice, make_mandate, make_plan
from tests.support.installments import balanced, charges_of
from tests.support.sandbox_checkout import completion

TODAY = date(2026, 3, 10)  # a Tuesday
PLAN_DUE = TODAY + timedelta(days=2)  # a Thursday: its reminder goes on the Wednesday


def _pass(db, day):
    """A follow-up pass at 11:00 Paris time on `day` (a weekday: inside the contact window)."""
    return run_followups(db, day, now=datetime.combine(day, clock(10, 0), UTC))


def _quiet(report) -> bool:
    """The pass asked nothing of the debtor: no reminder, charge, "missed" or broken plan."""
    return not (
        report.installment_reminders
        or report.charged
        or report.charge_failures
        or report.missed_installments
        or report.broken_plans
    )


def _card(db, debtor, plan):
    return make_mandate(
        db, debtor, plan, kind="card", payment_method_ref=card_method_ref("4242424242424242")
    )


def _dispute(db, debtor, invoice, reason="not_received"):
    return create_dispute(
        db, debtor, reason=reason, details="jamais livré", invoice_id=invoice.id, actor="debtor"
    )


def _waived(db) -> list[tuple[str, int]]:
    return [
        (event.entity_id, event.details["amount_minor"])
        for event in db.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "installment.waived")
            .order_by(AuditEvent.id)
        )
    ]


def test_a_disputed_plan_invoice_is_neither_charged_reminded_nor_missed_until_rejected(
    db, gateway, sandbox_payments
):
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 4000, due=TODAY - timedelta(days=40))
    plan = make_plan(db, debtor, [2000, 2000], first_due=PLAN_DUE, invoices=[invoice])
    _card(db, debtor, plan)
    first, second = plan.installments

    dispute = _dispute(db, debtor, invoice)
    gateway.sent.clear()

    # The day before its date (the card notice), its date (the card would be charged) and
    # long after (it would be missed): nothing, for money the debtor contests.
    for day in (PLAN_DUE - timedelta(days=1), PLAN_DUE, PLAN_DUE + timedelta(days=6)):
        assert _quiet(_pass(db, day)), day
    assert charges_of(db, first) == [] and gateway.sent == []
    assert (first.status, second.status, plan.status) == ("due", "due", "active")
    assert (first.hold_id, second.hold_id) == (dispute.id, dispute.id)
    (task,) = db.scalars(select(Task).where(Task.kind == "dispute_review"))
    assert task.details["installment_ids"] == [first.id, second.id]  # the collector sees it

    # Owed after all: due again, and the card kept for the plan pays it.
    decide_dispute(db, dispute, upheld=False, note="delivered on 2 March", actor="collector:ann")
    report = _pass(db, PLAN_DUE + timedelta(days=7))
    assert report.charged == [first.id] and first.status == "paid"


def test_a_disputed_plan_is_not_broken_and_a_rejection_gives_the_grace_days_again(
    db, gateway, sandbox_payments
):
    """Two instalments past their dates would be missed and the plan broken at the next pass:
    not while the dispute is open, nor in the grace days after the collector's decision."""
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 4000, due=TODAY - timedelta(days=90))
    invoice.dunning_paused_until = TODAY + timedelta(days=60)
    plan = make_plan(
        db, debtor, [2000, 2000], first_due=TODAY - timedelta(days=40), invoices=[invoice]
    )
    dispute = _dispute(db, debtor, invoice, reason="wrong_amount")
    gateway.sent.clear()

    assert _quiet(_pass(db, TODAY))
    assert [i.status for i in plan.installments] == ["due", "due"] and plan.status == "active"
    assert gateway.sent == []

    decide_dispute(db, dispute, upheld=False, note="the amount is right", actor="collector:ann")
    dispute.resolved_at = datetime.combine(TODAY, clock(9), UTC)
    assert _quiet(_pass(db, TODAY + timedelta(days=1)))
    later = _pass(db, TODAY + timedelta(days=6))
    assert later.broken_plans == [plan.id]  # late again, counted from the decision


def test_a_plan_over_two_invoices_holds_the_latest_instalments_for_the_disputed_one(
    db, gateway, sandbox_payments
):
    """The debtor contests the 30 € invoice of a 60 € plan in three: the first instalment
    (uncontested money) is charged on its date, the last two wait. Upheld, the invoice is
    cancelled and the plan asks what the other invoice still owes: the last instalment gives up
    all it asked, the second 10 €, and the plan completes with the second."""
    debtor = make_debtor(db, channels=("sms",))
    kept = make_invoice(db, debtor, 3000, due=TODAY - timedelta(days=60))
    contested = make_invoice(db, debtor, 3000, due=TODAY - timedelta(days=30))
    plan = make_plan(
        db,
        debtor,
        [2000, 2000, 2000],
        first_due=PLAN_DUE,
        step_days=28,
        invoices=[kept, contested],
    )
    _card(db, debtor, plan)
    first, second, third = plan.installments

    dispute = _dispute(db, debtor, contested, reason="defective")

    assert (first.hold_id, second.hold_id, third.hold_id) == (None, dispute.id, dispute.id)
    assert _pass(db, PLAN_DUE).charged == [first.id]
    assert (kept.paid_minor, contested.paid_minor) == (2000, 0)

    decide_dispute(db, dispute, upheld=True, note="goods returned", actor="collector:ann")

    assert contested.status == "cancelled"
    assert [(i.amount_minor, i.status) for i in plan.installments] == [
        (2000, "paid"),
        (1000, "due"),
        (0, "paid"),
    ]
    assert plan.total_minor == 3000 and plan.status == "active"
    assert _waived(db) == [(str(third.id), 2000), (str(second.id), 1000)]
    assert _pass(db, second.due_date).charged == [second.id]
    assert (second.paid_minor, plan.status) == (1000, "completed")
    assert kept.status == "paid" and balanced(db, kept) and contested.paid_minor == 0


def test_an_upheld_dispute_completes_a_plan_over_the_cancelled_invoice_alone(
    db, gateway, sandbox_payments
):
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 4000, due=TODAY - timedelta(days=40))
    plan = make_plan(db, debtor, [2000, 2000], first_due=PLAN_DUE, invoices=[invoice])
    _card(db, debtor, plan)
    dispute = _dispute(db, debtor, invoice, reason="not_mine")

    decide_dispute(db, dispute, upheld=True, note="identity theft", actor="collector:ann")

    assert invoice.status == "cancelled"
    assert (plan.status, plan.total_minor) == ("completed", 0)
    gateway.sent.clear()
    for day in (PLAN_DUE - timedelta(days=1), PLAN_DUE, PLAN_DUE + timedelta(days=40)):
        assert _quiet(_pass(db, day)), day
    assert gateway.sent == []


def test_an_upheld_dispute_raised_before_the_holds_still_settles_the_plan(
    db, gateway, sandbox_payments
):
    """A dispute opened before instalments were held (or on an instalment already paid): upheld,
    its invoice is cancelled, and the plan over it still stops asking for the cancelled share."""
    debtor = make_debtor(db, channels=("sms",))
    kept = make_invoice(db, debtor, 2000, due=TODAY - timedelta(days=60))
    contested = make_invoice(db, debtor, 2000, due=TODAY - timedelta(days=30))
    plan = make_plan(
        db, debtor, [2000, 2000], first_due=PLAN_DUE, step_days=28, invoices=[kept, contested]
    )
    dispute = _dispute(db, debtor, contested)
    for inst in plan.installments:
        inst.hold_id = None  # as a dispute raised before this change left them

    decide_dispute(db, dispute, upheld=True, note="credit note issued", actor="collector:ann")

    assert [(i.amount_minor, i.status) for i in plan.installments] == [(2000, "due"), (0, "paid")]
    assert plan.total_minor == 2000


def test_an_instalment_paid_by_its_link_settles_the_invoice_the_debtor_does_not_contest(
    client, db, gateway, sandbox_payments
):
    """The link names the plan's invoices, the contested one first (the oldest): the money the
    debtor pays for their plan meanwhile went onto the invoice they contest, and was kept on it
    when that invoice was cancelled, while the plan went on asking for the other one."""
    debtor = make_debtor(db, channels=("sms",))
    contested = make_invoice(db, debtor, 3000, due=TODAY - timedelta(days=60))
    kept = make_invoice(db, debtor, 3000, due=TODAY - timedelta(days=30))
    plan = make_plan(
        db,
        debtor,
        [2000, 2000, 2000],
        first_due=PLAN_DUE,
        step_days=28,
        invoices=[contested, kept],
    )
    first = plan.installments[0]
    dispute = _dispute(db, debtor, contested, reason="wrong_amount")
    _, url = create_link(db, debtor=debtor, purpose="installment", installment=first)
    db.flush()
    checkout = client.post(url.removeprefix("http://testserver"), follow_redirects=False)
    complete, returns = completion(checkout.headers["location"])
    client.post(complete, data={**returns, "outcome": "success"})
    db.expire_all()

    assert first.status == "paid"
    assert (contested.paid_minor, kept.paid_minor) == (0, 2000)

    decide_dispute(db, dispute, upheld=True, note="credit note", actor="collector:ann")
    assert [(i.amount_minor, i.status) for i in plan.installments] == [
        (2000, "paid"),
        (1000, "due"),
        (0, "paid"),
    ]
    assert balanced(db, kept) and balanced(db, contested)
