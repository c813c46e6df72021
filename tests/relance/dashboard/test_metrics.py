"""Dashboard numbers on a small portfolio whose answers are worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance import audit
from relance.dashboard import charts, metrics
from relance.db.models import AuditEvent
from tests.factories import (
    make_conversation,
    make_debtor,
    make_dispute,
    make_handoff,
    make_invoice,
    make_message,
    make_payment,
    make_promise,
)

AS_OF = date(2026, 6, 30)


def _at(days_before: int, hour: int = 12) -> datetime:
    return datetime.combine(AS_OF - timedelta(days=days_before), time(hour), UTC)


def _invoice(
    db: Session,
    owner,
    amount: int,
    *,
    due: int,
    issued: int,
    paid: int = 0,  # type: ignore[no-untyped-def]
    status: str = "open",
    paid_at: datetime | None = None,
    currency: str = "EUR",
):
    return make_invoice(
        db,
        owner,
        amount_minor=amount,
        paid_minor=paid,
        status=status,
        currency=currency,
        due_date=AS_OF + timedelta(days=due),
        issue_date=AS_OF - timedelta(days=issued),
        paid_at=paid_at,
    )


@pytest.fixture
def portfolio(db: Session) -> dict[str, object]:
    d1, d2, d3 = make_debtor(db), make_debtor(db), make_debtor(db)
    _invoice(db, d1, 10_000, due=-10, issued=40)  # 1-30 days late
    _invoice(db, d1, 20_000, due=-45, issued=75, paid=5_000)  # 31-60, balance 15,000
    _invoice(db, d2, 30_000, due=5, issued=25)  # not due yet
    disputed = _invoice(db, d2, 40_000, due=-100, issued=130, status="disputed")  # 90+
    on_time_due = AS_OF - timedelta(days=20)
    _invoice(
        db,
        d3,
        50_000,
        due=-20,
        issued=50,
        paid=50_000,
        status="paid",
        paid_at=datetime.combine(on_time_due - timedelta(days=1), time(9), UTC),
    )
    late_due = AS_OF - timedelta(days=30)
    _invoice(
        db,
        d3,
        8_000,
        due=-30,
        issued=60,
        paid=8_000,
        status="paid",
        paid_at=datetime.combine(late_due + timedelta(days=3), time(9), UTC),
    )
    _invoice(db, d3, 99_999, due=-10, issued=20, status="cancelled")
    _invoice(db, d3, 7_000, due=-5, issued=20, currency="USD")

    for status in ("kept", "kept", "kept", "broken", "pending", "pending"):
        make_promise(db, d1, status=status)
    make_dispute(db, d2, invoice_id=disputed.id)
    make_dispute(db, d2, status="resolved")

    c1, c2, c3 = (make_conversation(db, d, sender_id=f"s-{d.id}") for d in (d1, d2, d3))
    for conv in (c1, c2, c3):
        make_message(db, conv, "bonjour")
    make_handoff(db, c1)
    d4 = make_debtor(db)
    make_message(db, make_conversation(db, d4), "rappel", direction="outbound")

    for debtor, stage, days in ((d1, "friendly", 20), (d2, "friendly", 20), (d1, "firm", 10)):
        audit.record(
            db, actor="system", action="dunning.sent", debtor_id=debtor.id, stage=stage
        ).at = _at(days)
    make_payment(db, d1, 8_000, received_at=_at(15))
    make_payment(db, d2, 1_000, received_at=_at(40), currency="USD")  # before reminders
    db.flush()
    return {"d1": d1}


def test_ledger_numbers(db: Session, portfolio: dict[str, object]) -> None:
    board = metrics.compute(db, currency="EUR", as_of=AS_OF)
    assert board.outstanding_minor == 95_000
    assert board.overdue_minor == 65_000 and board.overdue_invoices == 3
    assert board.aging == [
        ("Not due", 30_000),
        ("1–30 days", 10_000),
        ("31–60 days", 15_000),
        ("61–90 days", 0),
        ("90+ days", 40_000),
    ]
    # 95,000 outstanding / 118,000 invoiced in 90 days × 90 days
    assert board.dso_days == 72.5
    # fell due unpaid: 10,000 + 20,000 + 40,000 + 8,000 (paid late); recovered 5,000 + 8,000
    assert (board.fell_due_minor, board.recovered_minor) == (78_000, 13_000)
    assert board.recovery_rate == pytest.approx(13 / 78)


def test_case_and_bot_numbers(db: Session, portfolio: dict[str, object]) -> None:
    board = metrics.compute(db, currency="EUR", as_of=AS_OF)
    assert board.promises["kept"] == 3 and board.promises["broken"] == 1
    assert board.promise_keep_rate == 0.75
    assert board.disputes_open == 1 and board.disputed_minor == 40_000
    assert (board.conversations, board.contained) == (3, 2)
    assert board.containment_rate == pytest.approx(2 / 3)
    stages = {s.stage: (s.contacted, s.paid) for s in board.stages}
    assert stages == {"friendly": (2, 1), "firm": (1, 0)}
    assert [s.stage for s in board.stages] == ["friendly", "firm"]


def test_weekly_collections_per_currency(db: Session, portfolio: dict[str, object]) -> None:
    board = metrics.compute(db, currency="EUR", as_of=AS_OF)
    assert len(board.weekly_collections) == 12
    assert board.weekly_collections[-1][0] == date(2026, 6, 29)  # Monday of the as-of week
    assert dict(board.weekly_collections)[date(2026, 6, 15)] == 8_000
    assert sum(v for _, v in board.weekly_collections) == 8_000
    usd = metrics.compute(db, currency="USD", as_of=AS_OF)
    assert usd.outstanding_minor == 7_000 and sum(v for _, v in usd.weekly_collections) == 1_000
    assert metrics.currencies(db) == ["EUR", "USD"]


def test_empty_portfolio_has_no_division_by_zero(db: Session) -> None:
    board = metrics.compute(db, currency="EUR", as_of=AS_OF)
    assert board.outstanding_minor == 0
    assert board.dso_days is None and board.recovery_rate is None
    assert board.promise_keep_rate is None and board.containment_rate is None


@pytest.mark.parametrize(
    ("days", "bucket"),
    [(-3, 0), (0, 0), (1, 1), (30, 1), (31, 2), (60, 2), (61, 3), (90, 3), (91, 4)],
)
def test_aging_bucket_edges(days: int, bucket: int) -> None:
    assert metrics.aging_bucket(days) == bucket


def test_charts_are_escaped_svg() -> None:
    svg = charts.column_chart([("<b>x</b>", 10), ("y", 0)], str, title="t")
    assert svg.startswith("<svg") and "&lt;b&gt;x&lt;/b&gt;" in svg and "<b>" not in svg
    bars = charts.progress_bars([("friendly", 1, 4)])
    assert "25% · 1/4" in bars
    ring = charts.donut([("Kept", 3, "#0f0"), ("Broken", 1, "#f00")], centre="75%")
    assert ring.count("stroke-dasharray") == 2 and "75%" in ring


def test_late_reasons_count_each_debtor_once_by_latest_reason_in_the_period(db: Session) -> None:
    from relance.late_reasons.service import StatedReason, record_stated

    def said(owner, text: str, days_before: int) -> None:  # type: ignore[no-untyped-def]
        record_stated(db, owner, StatedReason(text=text, intent="cannot_pay")).created_at = _at(
            days_before
        )

    d1, d2, d3, d4 = (make_debtor(db) for _ in range(4))
    said(d1, "je suis au chômage depuis mars", 40)
    said(d1, "et maintenant je suis à l'hôpital", 10)  # d1 counts once, as illness
    said(d2, "I lost my job", 5)
    said(d3, "cash flow is tight until the end of the month", 2)
    said(d4, "i'm broke", 200)  # outside the 90-day period
    db.flush()
    board = metrics.compute(db, currency="EUR", as_of=AS_OF, period_days=90)
    counted = {category: n for category, n in board.late_reasons.items() if n}
    assert counted == {"illness": 1, "job_loss": 1, "cash_flow": 1}
    assert board.late_reasons_total == 3
    assert set(board.late_reasons) >= {"hardship", "insolvency", "other"}  # every category listed


def test_plan_completion_and_debit_failure_rates(db: Session) -> None:
    """Two of three agreed plans completed (one waiting for approval does not count); of three
    SEPA debits with an outcome one failed (the one still processing and the card do not count)."""
    from relance.ledger.models import InstallmentCharge, SavedPaymentMethod
    from tests.factories import make_plan

    debtor = make_debtor(db)
    plans = [
        make_plan(db, debtor, [1000], status=status, created_at=_at(5))
        for status in ("completed", "completed", "broken", "pending_approval")
    ]
    make_plan(db, debtor, [1000], status="completed", created_at=_at(200))  # before the period
    saved = SavedPaymentMethod(debtor_id=debtor.id, provider="sandbox", kind="sepa_debit")
    db.add(saved)
    db.flush()
    inst = plans[0].installments[0]
    for attempt, (kind, status) in enumerate(
        [
            ("sepa_debit", "succeeded"),
            ("sepa_debit", "succeeded"),
            ("sepa_debit", "failed"),
            ("sepa_debit", "processing"),
            ("card", "failed"),
        ],
        start=1,
    ):
        db.add(
            InstallmentCharge(
                installment_id=inst.id,
                saved_method_id=saved.id,
                debtor_id=debtor.id,
                attempt=attempt,
                kind=kind,
                provider="sandbox",
                amount_minor=1000,
                currency="EUR",
                idempotency_key=f"k-{inst.id}-{attempt}",
                status=status,
                created_at=_at(3),
            )
        )
    db.flush()

    board = metrics.compute(db, as_of=AS_OF)

    assert (board.plans_agreed, board.plans_completed) == (3, 2)
    assert board.plan_completion_rate == pytest.approx(2 / 3)
    assert (board.debits_settled, board.debits_failed) == (3, 1)
    assert board.debit_failure_rate == pytest.approx(1 / 3)
    assert metrics.compute(db, as_of=AS_OF + timedelta(days=400)).debit_failure_rate is None


def test_a_reversed_payment_counts_as_no_payment(db: Session) -> None:
    """A payment that came back resolves nothing (self-service rate), converts no reminder stage,
    completes no plan, and the weekly collections take it off in the week it came back."""
    from relance.ledger.reversal import reverse_payment
    from relance.ledger.service import record_payment
    from tests.factories import make_plan

    kept, returned = make_debtor(db), make_debtor(db)
    make_payment(db, kept, 3_000, received_at=_at(16))  # Sunday 14 June: the week of 8 June
    make_payment(db, returned, 5_000, received_at=_at(15), reversed_at=_at(8))  # 15 June
    for debtor in (kept, returned):
        audit.record(
            db, actor="system", action="dunning.sent", debtor_id=debtor.id, stage="reminder_1"
        )
    db.flush()
    for event in db.scalars(select(AuditEvent).where(AuditEvent.action == "dunning.sent")):
        event.at = _at(20)
    plan_debtor = make_debtor(db)
    invoice = make_invoice(db, plan_debtor, 1_000)
    plan = make_plan(db, plan_debtor, [1_000], invoices=[invoice], created_at=_at(5))
    outcome = record_payment(
        db,
        debtor_id=plan_debtor.id,
        amount_minor=1_000,
        currency="EUR",
        method="sepa_debit",
        provider="stripe",
        provider_ref="pi_plan_returned",
        installment_id=plan.installments[0].id,
        thank=False,
        received_at=_at(4),
    )
    assert plan.status == "completed"
    reverse_payment(db, outcome.payment, reason="MD06", actor="stripe:webhook")
    outcome.payment.reversed_at = _at(3)
    partly = make_debtor(db)  # a card payment of which a dispute took back 7 € (a partial one)
    make_invoice(db, partly, 2_000)
    part = record_payment(
        db,
        debtor_id=partly.id,
        amount_minor=2_000,
        currency="EUR",
        method="card",
        provider="stripe",
        provider_ref="pi_partly_disputed",
        thank=False,
        received_at=_at(16),
    )
    reverse_payment(db, part.payment, reason="dispute_lost", actor="t", amount_minor=700, ref="du")
    part.payment.reversed_at = _at(3)
    db.flush()

    board = metrics.compute(db, as_of=AS_OF)

    # Resolutions: the kept payment, the partly disputed one and the plan; no returned payment.
    assert (board.resolutions, board.self_served) == (3, 3)
    assert [(s.stage, s.contacted, s.paid) for s in board.stages] == [("reminder_1", 2, 1)]
    assert (board.plans_agreed, board.plans_completed) == (1, 0)
    weeks = dict(board.weekly_collections)
    assert weeks[date(2026, 6, 8)] == 3_000 + 2_000
    assert weeks[date(2026, 6, 15)] == 5_000  # received that week: never rewritten
    # came back; plan paid and returned; the disputed part only
    assert weeks[date(2026, 6, 22)] == -5_000 + 1_000 - 1_000 - 700
