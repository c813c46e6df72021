"""Accounting export: journal lines of a period, CSV and JSON, from the CLI and the API."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.accounting.export import journal, to_csv, to_json
from relance.db.models import Invoice
from relance.disputes.service import decide_dispute
from relance.einvoice.bundle import expand
from relance.einvoice.service import import_sources
from relance.errors import BadInput
from relance.ledger.reversal import reverse_payment
from relance.ledger.service import record_payment
from tests.factories import make_debtor, make_dispute, make_invoice, make_token
from tests.relance.einvoice.samples import Sample, ubl


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


def test_a_reversed_payment_stays_in_its_period_and_comes_back_in_the_next(db: Session) -> None:
    """A SEPA debit received in October (100 € on F-1, 20 € left as credit) and returned in
    November: October's lines are those it made when received (never an account credit for the
    whole amount because its allocations were taken back), November carries the same lines with
    the opposite sign, dated the day of the return, and the two periods together sum to zero."""
    debtor = make_debtor(db, customer_number="C-REV")
    make_invoice(db, debtor, 10_000, number="F-R1", issued=date(2026, 9, 1), due=date(2026, 10, 1))
    outcome = record_payment(
        db,
        debtor_id=debtor.id,
        amount_minor=12_000,
        currency="EUR",
        method="sepa_debit",
        provider="stripe",
        provider_ref="pi_returned",
        thank=False,
        received_at=datetime(2026, 10, 28, 9, tzinfo=UTC),
    )
    october_before = to_csv(journal(db, date(2026, 10, 1), date(2026, 11, 1)))
    assert reverse_payment(db, outcome.payment, reason="MD06", actor="stripe:webhook")
    outcome.payment.reversed_at = datetime(2026, 11, 3, 8, tzinfo=UTC)
    db.flush()

    october = journal(db, date(2026, 10, 1), date(2026, 11, 1))
    assert to_csv(october) == october_before  # a closed period does not change
    assert [(x.date, x.type, x.invoice_number, x.amount) for x in october] == [
        ("2026-10-28", "account_credit", "", "20.00"),
        ("2026-10-28", "payment", "F-R1", "100.00"),
    ]
    november = journal(db, date(2026, 11, 1), date(2026, 12, 1))
    assert [(x.date, x.type, x.reference, x.invoice_number, x.amount) for x in november] == [
        ("2026-11-03", "reversal", "pi_returned", "", "-20.00"),
        ("2026-11-03", "reversal", "pi_returned", "F-R1", "-100.00"),
    ]
    both = journal(db, date(2026, 10, 1), date(2026, 12, 1))
    assert sum(Decimal(x.amount) for x in both) == 0
    data = json.loads(to_json(november, date(2026, 11, 1), date(2026, 12, 1)))
    assert data["totals"]["EUR"] == {"reversal": "-120.00"}


def test_part_of_a_payment_coming_back_keeps_its_lines_and_adds_only_that_part(db):
    """A card payment of October (100 € on F-P1, 20 € credit) disputed in November for 50 €:
    October keeps the lines it made when received, November carries -50 € (the 20 € credit,
    then 30 € of F-P1), the rest stays."""
    debtor = make_debtor(db, customer_number="C-PART")
    make_invoice(db, debtor, 10_000, number="F-P1", issued=date(2026, 9, 1), due=date(2026, 10, 1))
    outcome = record_payment(
        db,
        debtor_id=debtor.id,
        amount_minor=12_000,
        currency="EUR",
        method="card",
        provider="stripe",
        provider_ref="pi_partly_back",
        thank=False,
        received_at=datetime(2026, 10, 28, 9, tzinfo=UTC),
    )
    october_before = to_csv(journal(db, date(2026, 10, 1), date(2026, 11, 1)))
    assert reverse_payment(
        db, outcome.payment, reason="dispute_lost:general", actor="t", amount_minor=5000, ref="du_p"
    )
    outcome.payment.reversed_at = datetime(2026, 11, 3, 8, tzinfo=UTC)
    db.flush()

    assert to_csv(journal(db, date(2026, 10, 1), date(2026, 11, 1))) == october_before
    november = journal(db, date(2026, 11, 1), date(2026, 12, 1))
    assert [(x.date, x.type, x.invoice_number, x.amount) for x in november] == [
        ("2026-11-03", "reversal", "", "-20.00"),
        ("2026-11-03", "reversal", "F-P1", "-30.00"),
    ]
    both = journal(db, date(2026, 10, 1), date(2026, 12, 1))
    assert sum(Decimal(x.amount) for x in both) == Decimal("70.00")


def test_instalment_lines_name_the_creditors_document_and_the_instalment_apart(
    db: Session, tmp_path: Path
) -> None:
    """An e-invoice payable in three instalments is three invoice rows, "F2026-0042 (1/3)"…,
    so that each is dunned and paid on its own; the creditor's accounting knows one document,
    "F2026-0042", and matches the journal against it. Every line (payment, reversal,
    cancellation) names that document; which instalment is in the `instalment` column."""
    document = Sample(
        number="F2026-0042",
        instalments=(("2026-10-31", "40.00"), ("2026-11-30", "40.00"), ("2026-12-31", "40.00")),
    )
    report = import_sources(
        db, expand("f.xml", ubl(document)), actor="test", store_dir=tmp_path / "store"
    )
    assert report.files[0].status == "created", report.files[0].problems
    first, second, third = db.scalars(
        select(Invoice).where(Invoice.instalment_of == "F2026-0042").order_by(Invoice.instalment_no)
    ).all()
    assert second.number == "F2026-0042 (2/3)"
    for ref, minor, day, invoices in (
        ("BANK-42", 6_000, 5, [first.id, second.id]),
        ("pi_42", 2_000, 6, [second.id]),
    ):
        outcome = record_payment(
            db,
            debtor_id=first.debtor_id,
            amount_minor=minor,
            currency="EUR",
            method="transfer" if ref.startswith("BANK") else "card",
            provider="bank" if ref.startswith("BANK") else "stripe",
            provider_ref=ref,
            invoice_ids=invoices,
            thank=False,
            received_at=datetime(2026, 11, day, 9, tzinfo=UTC),
        )
    assert reverse_payment(db, outcome.payment, reason="dispute_lost:general", actor="t")
    outcome.payment.reversed_at = datetime(2026, 12, 2, 8, tzinfo=UTC)
    db.flush()

    lines = journal(db, date(2026, 11, 1), date(2027, 1, 1))

    assert [
        (x.date, x.type, x.reference, x.invoice_number, x.instalment, x.amount) for x in lines
    ] == [
        ("2026-11-05", "payment", "BANK-42", "F2026-0042", "1/3", "40.00"),
        ("2026-11-05", "payment", "BANK-42", "F2026-0042", "2/3", "20.00"),
        ("2026-11-06", "payment", "pi_42", "F2026-0042", "2/3", "20.00"),
        ("2026-12-02", "reversal", "pi_42", "F2026-0042", "2/3", "-20.00"),
    ]
    header, row, *_ = csv.reader(io.StringIO(to_csv(lines).decode()))
    assert header[-1] == "instalment" and header[:10] == [
        "date",
        "type",
        "reference",
        "customer_number",
        "debtor",
        "invoice_number",
        "amount",
        "currency",
        "method",
        "provider",
    ]
    assert (row[5], row[-1]) == ("F2026-0042", "1/3")
    data = json.loads(to_json(lines, date(2026, 11, 1), date(2027, 1, 1)))
    assert (data["lines"][0]["invoice_number"], data["lines"][0]["instalment"]) == (
        "F2026-0042",
        "1/3",
    )

    # A dispute upheld on the last instalment cancels it: the same document, that instalment.
    dispute = make_dispute(db, third.debtor, invoice_id=third.id)
    decide_dispute(db, dispute, upheld=True, note="not delivered", actor="collector:ann")
    today = datetime.now(UTC).date()
    (cancelled,) = [
        x for x in journal(db, today, today + timedelta(days=1)) if x.type == "cancellation"
    ]
    assert (cancelled.invoice_number, cancelled.instalment, cancelled.amount) == (
        "F2026-0042",
        "3/3",
        "40.00",
    )


def test_an_invoice_payable_at_once_keeps_its_number_and_no_instalment(db: Session) -> None:
    setup_ledger(db)
    lines = journal(db, date(2026, 10, 1), date(2026, 11, 1))
    assert {(x.invoice_number, x.instalment) for x in lines} == {("F-1", ""), ("F-2", ""), ("", "")}
