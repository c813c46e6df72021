"""Bank transfers: typed or imported from CSV, through the same allocation; idempotent by reference."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from relance.db.models import Payment
from relance.errors import InvalidContent, NotFound
from relance.ledger.transfers import import_transfers_csv, record_transfer, to_minor
from tests.factories import make_debtor, make_invoice

TODAY = date(2026, 3, 10)


@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("120.50", 12050),
        ("120,50", 12050),
        ("1 234,56", 123456),
        ("1,234.56", 123456),
        ("1.234,56", 123456),
        ("7", 700),
    ],
)
def test_amounts_in_major_units(text, minor):
    assert to_minor(text, "EUR") == minor


@pytest.mark.parametrize("text", ["", "abc", "-5", "0", "1.234"])
def test_bad_amounts_are_refused(text):
    with pytest.raises(InvalidContent) as refused:
        to_minor(text, "EUR")
    assert refused.value.code == "invalid_amount"


def test_collector_records_a_transfer_on_a_named_invoice(db, gateway):
    debtor = make_debtor(db, channels=("sms",))
    old = make_invoice(db, debtor, 1000, due=TODAY - timedelta(days=60))
    named = make_invoice(db, debtor, 2000, due=TODAY)

    outcome = record_transfer(
        db,
        reference="VIR-9",
        amount_minor=2000,
        currency="EUR",
        received_on=TODAY,
        invoice_number=named.number,
        recorded_by="user:alice@example.com",
    )

    assert outcome.created and outcome.payment.method == "transfer"
    assert outcome.payment.provider_ref == "bank:VIR-9"
    assert outcome.payment.recorded_by == "user:alice@example.com"
    assert named.status == "paid" and old.status == "open"
    with pytest.raises(InvalidContent) as no_reference:
        record_transfer(
            db,
            reference=" ",
            amount_minor=1,
            currency="EUR",
            received_on=TODAY,
            debtor_id=debtor.id,
        )
    assert no_reference.value.code == "reference_required"


@pytest.mark.parametrize(
    ("names", "error", "code"),
    [
        ({"invoice_number": "NO-SUCH"}, NotFound, "invoice_not_found"),
        ({"customer_number": "NO-SUCH"}, NotFound, "customer_not_found"),
        (
            {"customer_number": "OTHER", "invoice_number": "MINE"},
            InvalidContent,
            "invoice_not_customers",
        ),
        ({}, InvalidContent, "debtor_required"),
    ],
)
def test_a_transfer_that_names_no_known_debtor_is_refused_and_nothing_stored(
    db, gateway, names, error, code
):
    mine = make_debtor(db, channels=("sms",))
    other = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, mine, 1000, due=TODAY)
    names = {
        key: {"MINE": invoice.number, "OTHER": other.customer_number}.get(value, value)
        for key, value in names.items()
    }

    with pytest.raises(error) as refused:
        record_transfer(
            db, reference="VIR-X", amount_minor=1000, currency="EUR", received_on=TODAY, **names
        )

    assert refused.value.code == code
    assert db.scalar(select(func.count(Payment.id))) == 0


def test_csv_import_records_valid_rows_skips_known_and_reports_bad(db, gateway):
    debtor = make_debtor(db, channels=("sms",))
    a = make_invoice(db, debtor, 3000, due=TODAY - timedelta(days=60))
    b = make_invoice(db, debtor, 5000, due=TODAY - timedelta(days=10))
    csv_text = (
        "date;amount;currency;reference;customer_number;invoice_number\n"
        f"2026-03-01;30,00;EUR;R1;{debtor.customer_number};\n"
        f"2026-03-02;20,00;EUR;R2;;{b.number}\n"
        "2026-03-02;20,00;EUR;R3;NOPE;\n"
        f"03/02/2026;20,00;EUR;R4;{debtor.customer_number};\n"
        f"2026-03-02;abc;EUR;R5;{debtor.customer_number};\n"
    )

    report = import_transfers_csv(db, csv_text, recorded_by="cli:test")
    second = import_transfers_csv(db, csv_text, recorded_by="cli:test")

    assert len(report.recorded) == 2 and report.duplicates == []
    assert [line for line, _ in report.errors] == [4, 5, 6]
    assert "unknown customer NOPE" in report.errors[0][1]
    assert second.recorded == [] and second.duplicates == ["R1", "R2"]
    assert a.status == "paid" and b.paid_minor == 2000
    assert db.scalar(select(func.count(Payment.id)).where(Payment.debtor_id == debtor.id)) == 2


def test_cli_import_transfers(db, gateway, tmp_path):
    from relance.cli.main import app

    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 4500, due=TODAY)
    good = tmp_path / "good.csv"
    good.write_text(
        "date,amount,currency,reference,customer_number\n"
        f"2026-03-05,45.00,EUR,CLI-1,{debtor.customer_number}\n",
        encoding="utf-8",
    )
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "date,amount,currency,reference,customer_number\n2026-03-05,45.00,EUR,CLI-2,UNKNOWN\n",
        encoding="utf-8",
    )

    ok = CliRunner().invoke(app, ["payments", "import-transfers", str(good)])
    ko = CliRunner().invoke(app, ["payments", "import-transfers", str(bad)])

    assert ok.exit_code == 0, ok.output
    assert "recorded 1" in ok.output
    assert ko.exit_code == 1 and "line 2" in ko.output
    db.expire_all()
    assert invoice.status == "paid"
    payment = db.scalars(select(Payment).where(Payment.provider_ref == "bank:CLI-1")).one()
    assert payment.recorded_by == "cli:cli"
