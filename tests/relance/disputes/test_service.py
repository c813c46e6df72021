"""Dispute classification and creation."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from relance.disputes.service import classify_reason, create_dispute, withdraws_dispute
from tests.factories import make_debtor, make_invoice


def test_reasons_from_words_fr_en() -> None:
    assert classify_reason("jai jamais recu le colis") == "not_received"
    assert classify_reason("The item arrived broken") == "defective"
    assert classify_reason("vous m'avez facturé deux fois") == "wrong_amount"
    assert classify_reason("this is not my debt") == "not_mine"
    assert classify_reason("autre") == "other"
    assert classify_reason("I dispute this") is None


def test_single_open_invoice_is_named_and_marked(db: Session) -> None:
    debtor = make_debtor(db)
    invoice = make_invoice(db, debtor)
    dispute = create_dispute(db, debtor, reason="defective", details="  cassé  ")
    assert dispute.invoice_id == invoice.id and dispute.details == "cassé"
    assert invoice.status == "disputed"


def test_unknown_reason_becomes_other_and_references_are_unique(db: Session) -> None:
    debtor = make_debtor(db)
    first = create_dispute(db, debtor, reason="bogus", details=None)
    second = create_dispute(db, debtor, reason="other", details=None)
    assert first.reason == "other" and first.invoice_id is None  # no invoice: whole account
    assert first.reference != second.reference


@pytest.mark.parametrize(
    "text",
    [
        "forget the dispute",  # dispute_debt 0.99 on the CI model: it opened one more dispute
        "i want to cancel the disputes, i will pay",
        "laissez tomber la contestation",
        "oubliez ma réclamation",
        "non laissez tomber",
        "forget it",
        "never mind",
    ],
)
def test_words_that_take_a_dispute_back(text: str) -> None:
    assert withdraws_dispute(text)


@pytest.mark.parametrize(
    "text",
    [
        "cancel the order, it never arrived",  # a reason: no dispute named
        "la commande a été annulée",
        "jamais reçu",
        "I want to dispute this",
        "",
    ],
)
def test_reasons_are_not_withdrawals(text: str) -> None:
    assert not withdraws_dispute(text)
