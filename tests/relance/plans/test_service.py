"""Plan evaluation against policy limits, schedules, creation."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import AuditEvent
from relance.plans.service import (
    create_plan,
    decide_approval,
    due_dates,
    evaluate,
    request_approval,
    split,
)
from tests.factories import make_debtor, make_invoice, make_promise
from tests.support.plan_limits import CONSUMER

TODAY = date(2026, 1, 31)
LIMITS = CONSUMER


def test_split_and_monthly_dates_clamped() -> None:
    assert split(10_001, 3) == (3335, 3333, 3333)
    assert split(10_000, 3, 4000) == (4000, 3000, 3000)
    assert due_dates(TODAY, 3, "monthly") == (
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
    )
    assert due_dates(TODAY, 2, "biweekly")[1] == date(2026, 2, 14)


def test_within_limits() -> None:
    result = evaluate(
        LIMITS, total_minor=60_000, currency="EUR", installments=6, frequency="monthly", today=TODAY
    )
    assert result.status == "within_limits" and result.proposal == result.requested
    assert result.proposal.amounts == (10_000,) * 6


def test_counter_offer_is_closest_allowed() -> None:
    result = evaluate(
        LIMITS, total_minor=60_000, currency="EUR", installments=10, frequency="weekly", today=TODAY
    )
    assert result.status == "counter_offer"
    assert "too_many_installments" in result.problems
    assert "frequency_not_allowed" in result.problems
    assert (result.proposal.installments, result.proposal.frequency) == (6, "monthly")


def test_first_payment_raised_to_the_floor() -> None:
    result = evaluate(
        LIMITS,
        total_minor=60_000,
        currency="EUR",
        installments=6,
        frequency="monthly",
        first_minor=1000,
        today=TODAY,
    )
    assert result.status == "counter_offer"
    assert result.proposal.amounts[0] >= 6000


def test_needs_approval_when_nothing_fits() -> None:
    result = evaluate(
        LIMITS, total_minor=5000, currency="EUR", installments=4, frequency="monthly", today=TODAY
    )
    assert result.status == "needs_approval" and result.proposal is None


def test_create_plan_covers_open_invoices(db: Session) -> None:
    debtor = make_debtor(db)
    invoice = make_invoice(db, debtor, amount_minor=60_000)
    proposal = evaluate(
        LIMITS, total_minor=60_000, currency="EUR", installments=3, frequency="monthly", today=TODAY
    ).proposal
    plan = create_plan(db, debtor, proposal)
    assert plan.status == "active" and plan.invoice_ids == [invoice.id]
    assert [i.seq for i in plan.installments] == [1, 2, 3]
    assert sum(i.amount_minor for i in plan.installments) == 60_000


def _three_monthly(total_minor: int = 60_000):
    proposal = evaluate(
        LIMITS,
        total_minor=total_minor,
        currency="EUR",
        installments=3,
        frequency="monthly",
        today=TODAY,
    ).proposal
    assert proposal is not None
    return proposal


def test_a_plan_agreed_supersedes_the_pending_promise(db: Session) -> None:
    """Promised 600 € by a date, then agreed to 3 x 200 €: the promise's reminder, its link for
    600 € and its "broken" follow-up would contradict the plan. The plan replaces it."""
    debtor = make_debtor(db)
    invoice = make_invoice(db, debtor, amount_minor=60_000)
    promise = make_promise(db, debtor, 60_000, invoices=[invoice])
    kept = make_promise(db, debtor, 10_000, status="kept")
    plan = create_plan(db, debtor, _three_monthly(), actor="bot")
    assert (promise.status, kept.status) == ("cancelled", "kept")
    recorded = db.scalars(
        select(AuditEvent).where(
            AuditEvent.debtor_id == debtor.id, AuditEvent.action == "promise.superseded"
        )
    ).one()
    assert recorded.entity_id == str(promise.id) and recorded.actor == "bot"
    assert recorded.details["plan_id"] == plan.id


def test_a_plan_request_awaiting_approval_leaves_the_promise_until_approved(db: Session) -> None:
    debtor = make_debtor(db)
    make_invoice(db, debtor, amount_minor=60_000)
    promise = make_promise(db, debtor, 60_000)
    plan = request_approval(db, debtor, _three_monthly(), reason="outside_limits")
    assert promise.status == "pending"
    decide_approval(db, plan, approve=True, actor="collector@example.org")
    assert promise.status == "cancelled"
