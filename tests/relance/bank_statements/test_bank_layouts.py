"""Statements laid out as banks send them (tests/fixtures/bank_statements, see its README), read
through the real import: a camt.053.001.02 batch whose transfers carry their amounts only in
`AmtDtls/TxAmt` and share the batch's bank reference, and a day without entries."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.bank_statements import service
from relance.bank_statements.models import BankStatement, BankStatementEntry
from relance.bank_statements.parsers import detect_and_parse
from relance.db.models import Payment
from relance.errors import Conflict
from tests.factories import make_debtor, make_invoice

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bank_statements"
ACCOUNT = "FR7630006000011234567890189"
DUE = date(2026, 10, 1)  # before the statement


def _read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_a_v02_batch_gives_one_line_per_transfer_with_its_own_amount_and_payer() -> None:
    [statement] = detect_and_parse(_read("camt053_v02_batch.xml"), max_lines=100)
    assert (statement.statement_ref, statement.account_iban, statement.currency) == (
        "20261120-FIXTURE-0042",
        ACCOUNT,
        "EUR",  # from the balances: <Acct> names no currency
    )
    credits = [line for line in statement.lines if line.credit and not line.reversal]
    assert [
        (line.amount_minor, line.payer_name, line.payer_iban, line.remittance) for line in credits
    ] == [
        (30_000, "GARAGE DUPONT SARL", "DE89370400440532013000", "REGLEMENT FACTURE FX-OFF-1001"),
        (15_000, "CABINET LEROY", "GB29NWBK60161331926819", "Facture FX-OFF-1002 solde"),
    ]
    assert {line.booking_date for line in statement.lines} == {date(2026, 11, 20)}
    debit, reversal = statement.lines[2:]
    assert (debit.credit, debit.amount_minor) == (False, 7_500)
    assert (reversal.reversal, reversal.amount_minor, reversal.remittance) == (
        True,
        6_000,
        "RETOUR PRELEVEMENT AC04",
    )


def test_a_v02_batch_pays_each_transfers_invoice_once(db: Session, gateway) -> None:
    dupont = make_debtor(db, channels=("sms",), company="Garage Dupont SARL")
    leroy = make_debtor(db, channels=("sms",), company="Cabinet Leroy")
    first = make_invoice(db, dupont, 30_000, number="FX-OFF-1001", due=DUE)
    second = make_invoice(db, leroy, 15_000, number="FX-OFF-1002", due=DUE)

    report = service.import_statement(
        db, _read("camt053_v02_batch.xml"), actor="test", filename="camt053_v02_batch.xml"
    )

    assert (report.lines, report.credits, report.matched, report.review) == (4, 2, 2, 0)
    assert report.by_rule == {"invoice_number": 2}
    for invoice in (first, second):
        db.refresh(invoice)
        assert (invoice.status, invoice.paid_minor) == ("paid", invoice.amount_minor)
    entries = db.scalars(
        select(BankStatementEntry)
        .where(BankStatementEntry.statement_id.in_(report.statement_ids))
        .order_by(BankStatementEntry.id)
    ).all()
    # The two transfers share the batch's AcctSvcrRef: the second is told apart, not refused.
    assert [(e.entry_key, e.debtor_id, e.amount_minor) for e in entries] == [
        ("ref:BATCH-20261120-77", dupont.id, 30_000),
        ("ref:BATCH-20261120-77#1", leroy.id, 15_000),
    ]
    payments = db.scalars(select(Payment).where(Payment.id.in_(report.payment_ids))).all()
    assert sorted(p.provider_ref for p in payments) == [
        f"bank:{ACCOUNT}:ref:BATCH-20261120-77",
        f"bank:{ACCOUNT}:ref:BATCH-20261120-77#1",
    ]
    with pytest.raises(Conflict) as again:
        service.import_statement(db, _read("camt053_v02_batch.xml"), actor="test")
    assert again.value.code == "duplicate_statement"


def test_a_day_without_entries_is_imported_and_recorded(db: Session) -> None:
    report = service.import_statement(db, _read("camt053_v04_no_entries.xml"), actor="test")

    assert (report.lines, report.credits, report.matched, report.review) == (0, 0, 0, 0)
    [row] = db.scalars(select(BankStatement).where(BankStatement.id.in_(report.statement_ids)))
    assert (row.statement_ref, row.currency, row.entry_count) == (
        "20261121-FIXTURE-0043",
        "EUR",
        0,
    )
    with pytest.raises(Conflict):  # the same day twice is still recognised
        service.import_statement(db, _read("camt053_v04_no_entries.xml"), actor="test")
