"""Accounting export: journal lines of a period, CSV and JSON, from the CLI and the API."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from relance.accounting.export import journal, to_csv, to_json
from relance.errors import BadInput
from relance.ledger.service import record_payment
from tests.factories import make_debtor, make_invoice, make_token


def setup_ledger(db: Session) -> None:
    debtor = make_debtor(db, customer_number="C-ACC", name="=HYPERLINK(1)")
    for number in ("F-1", "F-2"):
        make_invoice(
            db, debtor, 10_000, number=number, issued=date(2026, 9, 1), due=date(2026, 10, 1)
        )
    for ref, minor, day, method in (
        ("BANK-1", 15_000, 5, "transfer"),
        ("credit-note:AV-1", 2_000, 6, "credit_note"),
        ("BANK-2", 9_000, 20, "transfer"),
        ("BANK-OUT", 100, 2, "transfer"),  # next month: outside the period
    ):
        month = 11 if ref == "BANK-OUT" else 10
        record_payment(
            db,
            debtor_id=debtor.id,
            amount_minor=minor,
            currency="EUR",
            method=method,
            provider="bank",
            provider_ref=ref,
            thank=False,
            received_at=datetime(2026, month, day, 9, tzinfo=UTC),
        )


def test_journal_lines_of_the_period(db: Session) -> None:
    setup_ledger(db)
    lines = journal(db, date(2026, 10, 1), date(2026, 11, 1))
    assert [(x.date, x.type, x.invoice_number, x.amount) for x in lines] == [
        ("2026-10-05", "payment", "F-1", "100.00"),
        ("2026-10-05", "payment", "F-2", "50.00"),
        ("2026-10-06", "credit_note", "F-2", "20.00"),
        ("2026-10-20", "account_credit", "", "60.00"),
        ("2026-10-20", "payment", "F-2", "30.00"),
    ]
    rows = list(csv.reader(io.StringIO(to_csv(lines).decode())))
    assert rows[0][:3] == ["date", "type", "reference"]
    assert rows[1][4] == "'=HYPERLINK(1)"  # a spreadsheet shows it, never runs it
    data = json.loads(to_json(lines, date(2026, 10, 1), date(2026, 11, 1)))
    assert data["totals"]["EUR"] == {
        "payment": "180.00",
        "credit_note": "20.00",
        "account_credit": "60.00",
    }


def test_bad_periods_are_refused(db: Session) -> None:
    with pytest.raises(BadInput, match="after its start"):
        journal(db, date(2026, 10, 1), date(2026, 10, 1))
    with pytest.raises(BadInput, match="at most"):
        journal(db, date(2025, 1, 1), date(2026, 10, 1))


def test_api_export_csv_and_json(client: TestClient, db: Session) -> None:

    auth = {"Authorization": f"Bearer {make_token(db, 'erp')}"}
    setup_ledger(db)
    url = "/api/v1/accounting/export?from=2026-10-01&to=2026-11-01"
    as_csv = client.get(url, headers=auth)
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text.count("\n") == 6
    as_json = client.get(url + "&format=json", headers=auth)
    assert len(as_json.json()["lines"]) == 5
    assert client.get(url.replace("2026-11-01", "2026-09-01"), headers=auth).status_code == 400
