"""The formal notice prints the creditor's IBAN and the RF reference of its first invoice, so the
debtor's transfer is matched automatically when the bank statement is imported."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from freezegun import freeze_time
from pypdf import PdfReader
from sqlalchemy.orm import Session

from relance.bank_statements import rf
from relance.db.base import utcnow
from relance.letters.service import create_formal_notice
from tests.factories import make_debtor, make_invoice


@freeze_time("2026-11-23 09:00:00")
def test_letter_prints_iban_and_rf_reference(db: Session, tmp_path: Path) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=40))
    letter = create_formal_notice(db, debtor, [invoice.id], payment_url=None, out_dir=tmp_path)
    reader = PdfReader(letter.pdf_path or "")
    text = " ".join(" ".join((p.extract_text() or "") for p in reader.pages).split())
    assert rf.printable(rf.for_invoice(invoice.id)) in text
    assert "FR76 3000 6000 0112 3456 7890 189" in text
    assert "Par virement" in text
