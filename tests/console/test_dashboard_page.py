"""The dashboard page renders the metrics and the charts for any signed-in user."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import make_debtor, make_invoice, make_promise


def test_dashboard_shows_kpis_and_charts(as_collector: TestClient, db: Session) -> None:
    owner = make_debtor(db)
    today = date.today()
    make_invoice(
        db,
        owner,
        amount_minor=120_000,
        due_date=today - timedelta(days=45),
        issue_date=today - timedelta(days=75),
    )
    make_invoice(
        db,
        owner,
        amount_minor=30_000,
        due_date=today + timedelta(days=5),
        issue_date=today - timedelta(days=25),
    )
    make_promise(db, owner, status="kept")
    make_promise(db, owner, status="broken")
    page = as_collector.get("/console/dashboard")
    assert page.status_code == 200
    html = page.text
    assert 'data-kpi="outstanding">€1,500.00<' in html
    assert 'data-kpi="overdue">€1,200.00<' in html
    assert 'data-kpi="dso">90 days<' in html
    assert 'data-kpi="promises-kept">1<' in html and 'data-kpi="promises-broken">1<' in html
    assert html.count("<svg") == 5
    assert "31–60 days" in html


def test_dashboard_filters_by_currency_and_ignores_unknown_values(
    as_collector: TestClient, db: Session
) -> None:
    owner = make_debtor(db)
    make_invoice(db, owner, amount_minor=5_000, currency="USD")
    usd = as_collector.get("/console/dashboard?currency=USD&period=30").text
    assert 'data-kpi="outstanding">US$50.00<' in usd or 'data-kpi="outstanding">$50.00<' in usd
    odd = as_collector.get("/console/dashboard?currency=XYZ&period=7")
    assert odd.status_code == 200 and 'value="90" selected' in odd.text


def test_dashboard_counts_the_reasons_for_paying_late(
    as_collector: TestClient, db: Session
) -> None:
    from relance.late_reasons.service import StatedReason, record_stated

    html = as_collector.get("/console/dashboard").text
    assert "Why debtors pay late" in html and "No reason given in the last 90 days." in html
    for text in ("I lost my job", "je suis au chômage", "ma société est en redressement"):
        record_stated(db, make_debtor(db), StatedReason(text=text, intent="cannot_pay"))
    html = as_collector.get("/console/dashboard").text
    assert 'data-kpi="reason-job_loss">2<' in html and 'data-kpi="reason-insolvency">1<' in html
    assert "67%" in html and "33%" in html and 'data-kpi="reason-illness"' not in html


def test_dashboard_shows_the_self_service_plan_completion_and_debit_failure_rates(
    as_collector: TestClient, db: Session
) -> None:
    """Issue 20's three rates, rendered from seeded rows: resolutions with and without a
    collector's message before them, agreed plans and how many completed, SEPA debits with an
    outcome and how many failed (a plan never agreed and a debit still processing count in none)."""
    from datetime import UTC, datetime

    from tests.factories import (
        make_conversation,
        make_dispute,
        make_installment_charge,
        make_mandate,
        make_message,
        make_payment,
        make_plan,
    )

    now = datetime.now(UTC)
    alone = make_debtor(db)  # paid on their own
    make_payment(db, alone, 5_000)
    helped = make_debtor(db)  # a collector wrote, then the debtor promised
    make_message(
        db,
        make_conversation(db, helped),
        "Bonjour, pouvez-vous régler ?",
        direction="outbound",
        author="collector",
        created_at=now - timedelta(days=2),
    )
    make_promise(db, helped)
    late = make_debtor(db)  # disputed first, the collector wrote afterwards
    make_dispute(db, late, created_at=now - timedelta(days=1))
    make_message(db, make_conversation(db, late), "Reçu.", direction="outbound", author="collector")
    planner = make_debtor(db)
    plans = [
        make_plan(db, planner, [1_000, 1_000], status=status)
        for status in ("completed", "completed", "broken", "active")
    ]
    make_plan(db, planner, [1_000], status="rejected")  # never agreed
    mandate = make_mandate(db, planner, plans[3])
    first, second = plans[3].installments
    make_installment_charge(db, first, mandate, status="succeeded")
    make_installment_charge(
        db, first, mandate, attempt=2, status="failed", failure_code="insufficient_funds"
    )
    make_installment_charge(db, second, mandate, status="succeeded")
    make_installment_charge(db, plans[2].installments[0], mandate, status="succeeded")
    make_installment_charge(db, plans[2].installments[1], mandate, status="processing")

    page = as_collector.get("/console/dashboard")

    assert page.status_code == 200
    html = page.text
    # 7 resolutions: a payment, a promise, a dispute and four agreed plans; only the promise
    # followed a collector's message.
    assert 'data-kpi="self-service">86%<' in html
    assert "6 of 7 payments, plans, promises and disputes with no collector message" in html
    assert 'data-kpi="plan-completion">50%<' in html
    assert "2 of 4 plans agreed in the period completed" in html
    assert 'data-kpi="debit-failure">25%<' in html
    assert "1 of 4 SEPA debits with a known outcome failed" in html
