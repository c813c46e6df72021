"""Console: upload a statement on the payments review page, then assign or dismiss what did not
match (CSRF-checked, audited)."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.bank_statements import rf
from relance.bank_statements.models import BankStatementEntry
from relance.db.models import AuditEvent
from tests.console.conftest import csrf_of
from tests.factories import make_debtor, make_invoice
from tests.relance.bank_statements.builders import Credit, camt053

PAGE = "/console/payments/review"


def test_upload_then_assign_the_unmatched_line(
    as_collector: TestClient, db: Session, gateway
) -> None:  # type: ignore[no-untyped-def]
    debtor = make_debtor(db, channels=("sms",))
    matched = make_invoice(db, debtor, 1000, due=date(2026, 10, 1))
    other = make_invoice(db, debtor, 2500, due=date(2026, 10, 2))
    data = camt053(
        [
            Credit("10.00", ref="C1", structured=rf.for_invoice(matched.id)),
            Credit("25.00", ref="C2", payer="Mystery Payer", remittance="virement"),
        ],
        statement_id="CONSOLE-1",
    )
    token = csrf_of(as_collector, PAGE)
    no_csrf = as_collector.post(
        "/console/payments/bank-statements", files={"file": ("s.xml", data)}, follow_redirects=False
    )
    assert no_csrf.status_code in (303, 403) and "imported=" not in no_csrf.headers.get(
        "location", ""
    )
    response = as_collector.post(
        "/console/payments/bank-statements",
        data={"csrf_token": token},
        files={"file": ("s.xml", data)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    page = as_collector.get(response.headers["location"])
    assert "1 matched and recorded, 1 to review" in page.text
    assert "Mystery Payer" in page.text and "€25.00" in page.text
    line = db.scalars(
        select(BankStatementEntry).where(BankStatementEntry.entry_key == "ref:C2")
    ).one()
    assert f"/console/payments/bank-lines/{line.id}" in page.text

    response = as_collector.post(
        f"/console/payments/bank-lines/{line.id}",
        data={"csrf_token": token, "decision": "assign", "invoice_number": other.number},
        follow_redirects=False,
    )
    assert response.status_code == 303
    db.expire_all()
    assert line.status == "assigned"
    db.refresh(other)
    assert other.status == "paid"
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "bank_line.assigned")).one()
    assert event.actor.startswith("user:")


def test_bad_upload_shows_each_line_error(as_collector: TestClient, db: Session) -> None:
    token = csrf_of(as_collector, PAGE)
    data = camt053([Credit("1.00"), Credit("2.00", currency="USD")], statement_id="CONSOLE-BAD")
    response = as_collector.post(
        "/console/payments/bank-statements",
        data={"csrf_token": token},
        files={"file": ("bad.xml", data)},
        follow_redirects=False,
    )
    page = as_collector.get(response.headers["location"])
    assert "bad.xml: line 2: USD amount on a EUR account" in page.text
    assert db.scalars(select(BankStatementEntry)).all() == []


def test_dismiss_needs_a_note(as_collector: TestClient, db: Session) -> None:
    token = csrf_of(as_collector, PAGE)
    data = camt053([Credit("7.00", ref="C9", payer="Refund Ltd")], statement_id="CONSOLE-2")
    as_collector.post(
        "/console/payments/bank-statements",
        data={"csrf_token": token},
        files={"file": ("s.xml", data)},
    )
    line = db.scalars(
        select(BankStatementEntry).where(BankStatementEntry.entry_key == "ref:C9")
    ).one()
    url = f"/console/payments/bank-lines/{line.id}"
    refused = as_collector.post(url, data={"csrf_token": token, "decision": "dismiss"})
    assert "say what this money is" in refused.text
    as_collector.post(url, data={"csrf_token": token, "decision": "dismiss", "note": "refund"})
    db.expire_all()
    assert (line.status, line.note) == ("dismissed", "refund")


def test_more_lines_than_a_page_are_paged_not_dropped(as_collector: TestClient) -> None:
    """130 unmatched credits: the first page shows 100 and links to the rest; the payment
    reviews' own pager keeps its place."""
    token = csrf_of(as_collector, PAGE)
    credits = [Credit("3.00", ref=f"P{n:03d}", payer=f"Payer {n:03d}") for n in range(130)]
    as_collector.post(
        "/console/payments/bank-statements",
        data={"csrf_token": token},
        files={"file": ("big.xml", camt053(credits, statement_id="CONSOLE-PAGED"))},
    )
    first = as_collector.get(PAGE)
    assert "Payer 000" in first.text and "Payer 099" in first.text
    assert "Payer 100" not in first.text
    assert "Page 1 of 2 · 130 items" in first.text
    assert "bank_page=2" in first.text
    second = as_collector.get(PAGE, params={"bank_page": 2})
    assert "Payer 100" in second.text and "Payer 129" in second.text
    assert "Payer 099" not in second.text
    assert as_collector.get(PAGE, params={"bank_page": 0}).status_code == 422
