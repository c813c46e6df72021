"""E-invoices payable in instalments (CII: several SpecifiedTradePaymentTerms with a
PartialPaymentAmount each, EXTENDED profile; UBL: several cac:PaymentTerms with cbc:Amount and
cbc:PaymentDueDate): one invoice row per instalment, so each is owed only from its own date."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance.bank_statements import rf
from relance.db.models import AuditEvent, Invoice, Payment
from relance.db.models.enums import InvoiceStatus
from relance.einvoice.bundle import expand
from relance.einvoice.service import EInvoiceReport, import_sources
from tests.relance.einvoice.samples import Sample, cii, facturx, ubl

THREE = (("2026-10-31", "40.00"), ("2026-11-30", "40.00"), ("2026-12-31", "40.00"))
BASE = Sample(number="F2026-0042", instalments=THREE)


def _facturx(s: Sample) -> bytes:
    return facturx(s, "extended")  # the profile whose XSD allows several payment terms


def _cii(s: Sample) -> bytes:
    return cii(s, "extended")


FORMATS: dict[str, Callable[[Sample], bytes]] = {"facturx": _facturx, "cii": _cii, "ubl": ubl}


def run(db: Session, tmp_path: Path, *files: tuple[str, bytes]) -> EInvoiceReport:
    sources = [s for name, data in files for s in expand(name, data)]
    return import_sources(db, sources, actor="test", store_dir=tmp_path / "store")


def rows(db: Session) -> list[Invoice]:
    return list(db.scalars(select(Invoice).order_by(Invoice.instalment_no, Invoice.id)))


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_each_instalment_is_its_own_invoice_with_its_date_amount_and_rf(
    db: Session, tmp_path: Path, fmt: str
) -> None:
    report = run(db, tmp_path, ("f.bin", FORMATS[fmt](BASE)))
    [entry] = report.files
    assert entry.status == "created", entry.problems
    assert entry.warnings == [
        "payable in 3 instalments: 40.00 EUR on 2026-10-31; 40.00 EUR on 2026-11-30; "
        "40.00 EUR on 2026-12-31"
    ]
    found = rows(db)
    assert [(i.number, i.amount_minor, str(i.due_date)) for i in found] == [
        ("F2026-0042 (1/3)", 4_000, "2026-10-31"),
        ("F2026-0042 (2/3)", 4_000, "2026-11-30"),
        ("F2026-0042 (3/3)", 4_000, "2026-12-31"),
    ]
    assert [i.instalment_no for i in found] == [1, 2, 3]
    assert {(i.instalment_of, i.status) for i in found} == {("F2026-0042", InvoiceStatus.OPEN)}
    assert len({i.document_path for i in found}) == 1 and found[0].document_path
    assert len({rf.for_invoice(i.id) for i in found}) == 3
    assert len({i.debtor_id for i in found}) == 1
    audited = db.scalar(select(func.count()).where(AuditEvent.action == "einvoice.created"))
    assert audited == 3


def test_instalments_are_numbered_in_due_date_order_and_the_prepaid_part_is_left_out(
    db: Session, tmp_path: Path
) -> None:
    """BT-115, the amount due, is what the instalments share: the total less what was paid."""
    shuffled = Sample(
        number="F-P",
        total="120.00",
        instalments=(("2026-12-15", "50.00"), ("2026-11-15", "50.00")),
    )
    xml = ubl(shuffled).replace(
        b"<cbc:PayableAmount",
        b'<cbc:PrepaidAmount currencyID="EUR">20.00</cbc:PrepaidAmount><cbc:PayableAmount',
    )
    assert run(db, tmp_path, ("p.xml", xml)).files[0].status == "created"
    assert [(i.number, str(i.due_date), i.amount_minor, i.paid_minor) for i in rows(db)] == [
        ("F-P (1/2)", "2026-11-15", 5_000, 0),
        ("F-P (2/2)", "2026-12-15", 5_000, 0),
    ]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_instalments_not_adding_up_to_the_amount_due_are_refused_and_nothing_is_stored(
    db: Session, tmp_path: Path, fmt: str
) -> None:
    wrong = BASE.but(instalments=(("2026-10-31", "40.00"), ("2026-11-30", "70.00")))
    good = Sample(number="F-OK")
    report = run(db, tmp_path, ("wrong.bin", FORMATS[fmt](wrong)), ("good.xml", ubl(good)))
    bad, ok = report.files
    assert ok.status == "created"
    assert bad.status == "rejected"
    [problem] = bad.problems
    assert problem.field == "instalments (payment terms BT-20, due dates BT-9)"
    assert problem.message == (
        "the 2 instalments add up to 110.00 EUR, but the amount due is 120.00 EUR "
        "(total less paid): nothing imported"
    )
    assert [i.number for i in rows(db)] == ["F-OK"]
    assert not (tmp_path / "store").exists() or len(list((tmp_path / "store").iterdir())) == 1


@pytest.mark.parametrize("fmt", ["cii", "ubl"])
def test_an_instalment_without_its_amount_or_date_is_refused(
    db: Session, tmp_path: Path, fmt: str
) -> None:
    no_amount = BASE.but(instalments=(*THREE[:2], ("2026-12-31", "")))
    no_date = BASE.but(instalments=(*THREE[:2], ("", "40.00")))
    report = run(db, tmp_path, ("a.xml", FORMATS[fmt](no_amount)), ("d.xml", FORMATS[fmt](no_date)))
    amount, date_ = (f.problems[0].message for f in report.files)
    assert "payable in instalments" in amount and "3 has no" in amount
    assert ("PartialPaymentAmount" if fmt == "cii" else "cbc:Amount") in amount
    assert ("DueDateDateTime" if fmt == "cii" else "cbc:PaymentDueDate") in date_
    assert rows(db) == []


def test_reimport_is_idempotent_and_a_moved_instalment_is_updated_with_a_report_line(
    db: Session, tmp_path: Path
) -> None:
    run(db, tmp_path, ("f.pdf", _facturx(BASE)))
    ids = [i.id for i in rows(db)]
    again = run(db, tmp_path, ("f.pdf", _facturx(BASE)))
    assert again.files[0].status == "unchanged" and again.files[0].warnings == []
    assert [i.id for i in rows(db)] == ids
    moved = BASE.but(
        instalments=(("2026-10-31", "40.00"), ("2026-12-15", "30.00"), ("2026-12-31", "50.00"))
    )
    changed = run(db, tmp_path, ("f2.pdf", _facturx(moved)))
    [entry] = changed.files
    assert entry.status == "updated", entry.problems
    assert entry.warnings == [
        "instalment schedule changed: payable in 3 instalments: 40.00 EUR on 2026-10-31; "
        "30.00 EUR on 2026-12-15; 50.00 EUR on 2026-12-31"
    ]
    assert [(i.id, i.amount_minor, str(i.due_date)) for i in rows(db)] == [
        (ids[0], 4_000, "2026-10-31"),
        (ids[1], 3_000, "2026-12-15"),
        (ids[2], 5_000, "2026-12-31"),
    ]
    assert len({i.document_path for i in rows(db)}) == 1


def test_a_changed_number_of_instalments_is_refused_and_nothing_changes(
    db: Session, tmp_path: Path
) -> None:
    run(db, tmp_path, ("f.xml", ubl(BASE)))
    two = BASE.but(instalments=(("2026-10-31", "60.00"), ("2026-11-30", "60.00")))
    single = BASE.but(instalments=())
    report = run(db, tmp_path, ("two.xml", ubl(two)), ("one.xml", ubl(single)))
    assert [f.status for f in report.files] == ["rejected", "rejected"]
    assert "payable in 3 instalment(s), this version in 2" in report.files[0].problems[0].message
    assert "payable in 3 instalment(s), this version in 1" in report.files[1].problems[0].message
    assert [(i.number, i.amount_minor) for i in rows(db)] == [
        ("F2026-0042 (1/3)", 4_000),
        ("F2026-0042 (2/3)", 4_000),
        ("F2026-0042 (3/3)", 4_000),
    ]


def test_a_credit_note_on_the_invoice_reduces_its_last_instalments_first(
    db: Session, tmp_path: Path
) -> None:
    run(db, tmp_path, ("f.xml", ubl(BASE)))
    note = Sample(number="AV-42", type_code="381", preceding="F2026-0042", total="50.00")
    first = run(db, tmp_path, ("av.xml", cii(note)))
    assert first.files[0].status == "credited", first.files[0].problems
    assert [(i.number, i.balance_minor, i.status) for i in rows(db)] == [
        ("F2026-0042 (1/3)", 4_000, InvoiceStatus.OPEN),
        ("F2026-0042 (2/3)", 3_000, InvoiceStatus.OPEN),
        ("F2026-0042 (3/3)", 0, InvoiceStatus.PAID),
    ]
    assert run(db, tmp_path, ("av.xml", cii(note))).files[0].status == "unchanged"
    payment = db.scalars(select(Payment)).one()
    assert (payment.method, payment.amount_minor) == ("credit_note", 5_000)


def test_a_single_due_date_invoice_still_imports_as_one_row(db: Session, tmp_path: Path) -> None:
    """One payment term with an amount is a single due date: read as before."""
    one = Sample(number="F-1", instalments=(("2026-11-30", "120.00"),))
    assert run(db, tmp_path, ("one.xml", ubl(one))).files[0].status == "created"
    [invoice] = rows(db)
    assert (invoice.number, invoice.instalment_of, invoice.amount_minor) == ("F-1", None, 12_000)
