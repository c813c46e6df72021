"""The fixed recovery indemnity is 40 euros (Code de commerce D441-5), not 40 of the invoice's
currency. Seen in the simulator: a business invoiced in dollars was told of "a fixed EUR 40 recovery
indemnity per invoice (US$40.00 in total)", and its formal notice claimed US$40 a late invoice.
Relance has no exchange rate to rely on: an invoice in another currency owes no indemnity here
(its interest still runs), one in euros owes it as before."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from pypdf import PdfReader
from sqlalchemy.orm import Session

from relance.db.base import utcnow
from relance.db.models import Invoice
from relance.db.models.enums import Segment
from relance.letters.amounts import compute_claim, fixed_indemnity_minor, indemnity_applies
from relance.letters.service import create_formal_notice
from relance.policy.service import seed_policy
from tests.factories import make_debtor, make_invoice

TODAY = "2026-11-23 09:00:00"
AS_OF = date(2026, 11, 23)
URL = "https://pay.example.test/pay/tok_abc123"
RULES = seed_policy().letters


def _invoice(id_: int, currency: str, days_late: int = 30, **columns: object) -> Invoice:
    due = AS_OF - timedelta(days=days_late)
    values: dict[str, object] = {
        "id": id_,
        "number": f"INV-{id_}",
        "amount_minor": 100_000,
        "paid_minor": 0,
        "currency": currency,
        "issue_date": due - timedelta(days=30),
        "due_date": due,
    }
    values.update(columns)
    return Invoice(**values)


def _text(path: str) -> str:
    reader = PdfReader(path)
    text = " ".join((page.extract_text() or "") for page in reader.pages)
    return " ".join(text.split())


@pytest.mark.parametrize("currency", ["USD", "GBP"])
def test_a_late_b2b_invoice_in_another_currency_owes_no_indemnity_but_its_interest(
    currency: str,
) -> None:
    claim = compute_claim(
        [_invoice(1, currency), _invoice(2, currency, days_late=60)],
        segment=Segment.B2B,
        as_of=AS_OF,
        rules=RULES,
    )
    assert [line.indemnity_minor for line in claim.lines] == [0, 0]
    assert claim.indemnity_minor == 0 and claim.indemnity_unit_minor == 0
    assert claim.interest_minor > 0  # L441-10 interest still runs, in the invoice's currency
    assert claim.total_minor == claim.principal_minor + claim.interest_minor


def test_a_late_b2b_invoice_in_euros_still_owes_the_40_euros() -> None:
    claim = compute_claim(
        [_invoice(1, "EUR"), _invoice(2, "EUR", days_late=60)],
        segment=Segment.B2B,
        as_of=AS_OF,
        rules=RULES,
    )
    assert [line.indemnity_minor for line in claim.lines] == [4_000, 4_000]
    assert (claim.indemnity_minor, claim.indemnity_unit_minor) == (8_000, 4_000)


def test_the_rule_is_decided_in_one_place() -> None:
    assert indemnity_applies("EUR") and indemnity_applies("eur")
    assert not indemnity_applies("USD") and not indemnity_applies("GBP")
    assert fixed_indemnity_minor("EUR", RULES) == RULES.fixed_indemnity_minor == 4_000
    assert fixed_indemnity_minor("USD", RULES) == fixed_indemnity_minor("GBP", RULES) == 0
    waived = RULES.model_copy(update={"fixed_indemnity_minor": 0})
    assert fixed_indemnity_minor("EUR", waived) == 0


@freeze_time(TODAY)
@pytest.mark.parametrize(
    ("language", "money", "absent"),
    [
        ("en", "£1,000.00", ("£40", "Indemnity", "D441-5", "indemnity")),
        ("fr", "1 000,00 £GB", ("40,00 £", "Indemnité", "D441-5", "indemnité")),
    ],
)
def test_the_formal_notice_of_a_business_invoiced_in_pounds_claims_no_indemnity(
    db: Session, tmp_path: Path, language: str, money: str, absent: tuple[str, ...]
) -> None:
    debtor = make_debtor(
        db, segment="b2b", company="Harbour Ltd", language=language, channels=("sms", "whatsapp")
    )
    invoice = make_invoice(
        db,
        debtor,
        due=utcnow().date() - timedelta(days=31),
        amount_minor=100_000,
        number="INV-77",
        currency="GBP",
    )
    letter = create_formal_notice(db, debtor, [invoice.id], payment_url=URL, out_dir=tmp_path)
    assert letter.currency == "GBP" and letter.indemnity_minor == 0
    assert letter.interest_minor == 1032  # 12.15 % over 31 days on £1,000: interest still runs
    text = _text(letter.pdf_path or "")
    assert money in text and "L441-10" in text
    for wrong in absent:
        assert wrong not in text, wrong


@freeze_time(TODAY)
def test_the_formal_notice_of_a_business_invoiced_in_euros_keeps_its_indemnity(
    db: Session, tmp_path: Path
) -> None:
    debtor = make_debtor(db, segment="b2b", language="en", channels=("sms", "whatsapp"))
    invoice = make_invoice(
        db, debtor, due=utcnow().date() - timedelta(days=31), amount_minor=100_000
    )
    letter = create_formal_notice(db, debtor, [invoice.id], payment_url=URL, out_dir=tmp_path)
    assert letter.indemnity_minor == 4_000
    text = _text(letter.pdf_path or "")
    assert "Indemnity" in text and "€40.00" in text and "D441-5" in text
