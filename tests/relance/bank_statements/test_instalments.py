"""A transfer naming an invoice payable in instalments by its own number (the payer knows no
"(1/3)") pays its earliest open instalments first; its RF reference pays that instalment."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.bank_statements import rf, service
from relance.db.models import Invoice
from relance.db.models.enums import InvoiceStatus
from tests.factories import make_debtor, make_invoice
from tests.relance.bank_statements.builders import Credit, camt053


def _instalments(db: Session) -> list[Invoice]:
    debtor = make_debtor(db, channels=("sms",))
    return [
        make_invoice(
            db,
            debtor,
            4_000,
            due=date(2026, 9 + k, 1),
            number=f"F2026-0042 ({k}/3)",
            instalment_of="F2026-0042",
            instalment_no=k,
        )
        for k in (1, 2, 3)
    ]


def test_the_base_number_pays_the_earliest_open_instalment(db: Session, gateway) -> None:  # type: ignore[no-untyped-def]
    first, second, third = _instalments(db)
    data = camt053(
        [
            Credit("40.00", ref="B1", remittance="Facture F2026-0042 echeance"),
            Credit("50.00", ref="B2", remittance="F2026-0042"),
        ],
        statement_id="S-INST-1",
    )
    report = service.import_statement(db, data, actor="test", filename="s.xml")
    assert (report.matched, report.by_rule) == (2, {"invoice_number": 2})
    for invoice in (first, second, third):
        db.refresh(invoice)
    assert [(i.paid_minor, i.status) for i in (first, second, third)] == [
        (4_000, InvoiceStatus.PAID),
        (4_000, InvoiceStatus.PAID),
        (1_000, InvoiceStatus.OPEN),
    ]


def test_an_instalments_rf_pays_that_instalment(db: Session, gateway) -> None:  # type: ignore[no-untyped-def]
    first, second, _third = _instalments(db)
    data = camt053(
        [Credit("40.00", ref="B3", structured=rf.for_invoice(second.id))],
        statement_id="S-INST-2",
    )
    assert service.import_statement(db, data, actor="test", filename="s.xml").matched == 1
    db.refresh(first)
    db.refresh(second)
    assert (first.paid_minor, second.paid_minor) == (0, 4_000)


def test_all_instalments_paid_goes_to_review(db: Session, gateway) -> None:  # type: ignore[no-untyped-def]
    parts = _instalments(db)
    for part in parts:
        part.paid_minor, part.status = part.amount_minor, InvoiceStatus.PAID
    db.flush()
    data = camt053([Credit("40.00", ref="B4", remittance="F2026-0042")], statement_id="S-INST-3")
    report = service.import_statement(db, data, actor="test", filename="s.xml")
    assert report.review == 1
    assert db.scalar(select(Invoice.paid_minor).where(Invoice.id == parts[0].id)) == 4_000
