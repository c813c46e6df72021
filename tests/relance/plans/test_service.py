"""Plan evaluation against policy limits, schedules, creation."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from relance.plans.service import create_plan, due_dates, evaluate, split
from tests.factories import make_debtor, make_invoice
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
