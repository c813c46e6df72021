"""The category of a stated reason, from the words (French and English) and else the intent."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from relance.late_reasons.service import StatedReason, UnknownCategory, classify, record_reason
from tests.factories import make_debtor


@pytest.mark.parametrize(
    ("text", "intent", "category"),
    [
        ("je suis au chômage depuis mars", "cannot_pay", "job_loss"),
        ("I lost my job", "cannot_pay", "job_loss"),
        ("J'AI ÉTÉ LICENCIÉ", "cannot_pay", "job_loss"),
        ("ma société est en redressement", "cannot_pay", "insolvency"),
        ("depuis la liquidation je n'ai plus d'argent", "cannot_pay", "insolvency"),
        ("I'm in hospital", "cannot_pay", "illness"),
        ("je suis malade", "cannot_pay", "illness"),
        ("I never got the invoice", "request_invoice_copy", "not_received"),
        ("je n'ai jamais reçu la facture", "request_invoice_copy", "not_received"),
        ("cash flow is tight until the end of the month", "cannot_pay", "cash_flow"),
        ("la trésorerie est tendue", "cannot_pay", "cash_flow"),
        ("i'm broke", "cannot_pay", "hardship"),
        ("j'ai oublié", "forgot_to_pay", "oversight"),
        ("oups", "forgot_to_pay", "oversight"),
        ("je ne peux pas payer", "cannot_pay", "other"),
        ("I'll be still unable", "cannot_pay", "other"),  # "ill" is a whole word only
        ("send me the invoice", "request_invoice_copy", None),
        ("", None, None),
    ],
)
def test_classify(text: str, intent: str | None, category: str | None) -> None:
    assert classify(text, intent) == category


def test_a_category_outside_the_list_is_refused(db: Session) -> None:
    owner = make_debtor(db)
    with pytest.raises(UnknownCategory, match="bored") as refused:
        record_reason(db, owner, category="bored", stated=StatedReason(text="meh"))
    assert refused.value.code == "unknown_category"
