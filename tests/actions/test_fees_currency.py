"""'What are these late fees about?' from a business invoiced in dollars: seen in the simulator,
the answer was "… late-payment interest (US$1.53 so far) and a fixed EUR 40 recovery indemnity
per invoice (US$40.00 in total)". The indemnity is 40 euros (D441-5), owed here on invoices in
euros only: the answer for a bill in dollars speaks of the interest alone, the one for a bill in
euros gives the indemnity in euros."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.balance import ActionExplainFees
from relance.nlg.renderer import render
from relance.nlg.templates_store import bundled_templates
from tests.actions.conftest import make_tracker, slots_for
from tests.factories import make_conversation, make_debtor, make_invoice

NOW = "2026-11-23 12:00:00"
TODAY = date(2026, 11, 23)


def _answer(
    db: Session, currency: str, language: str, amounts: tuple[int, ...]
) -> tuple[dict[str, Any], str]:
    owner = make_debtor(db, segment="b2b", language=language)
    for amount in amounts:
        make_invoice(db, owner, amount, due=TODAY - timedelta(days=30), currency=currency)
    conv = make_conversation(db, owner)
    dispatcher = CollectingDispatcher()
    ActionExplainFees().run(dispatcher, make_tracker(slots_for(owner, conv, language=language)), {})
    [message] = dispatcher.messages
    variables = {k: v for k, v in message.items() if k not in ("response", "template")}
    variables |= {"creditor_name": "Relance Demo SAS", "creditor_phone": "+33 1 84 00 00 00"}
    text = render(
        bundled_templates(), "utter_fees", language=language, channel="sms", variables=variables
    )
    return message, " ".join(text.split())  # babel's no-break spaces read as spaces


@freeze_time(NOW)
@pytest.mark.parametrize(
    ("language", "interest"), [("en", "US$9.99 so far"), ("fr", "9,99 $US à ce jour")]
)
def test_fees_for_a_business_invoiced_in_dollars_speak_of_interest_only(
    db: Session, language: str, interest: str
) -> None:
    # 1 000 $ × 12.15 % × 30 / 365 = 9.986… $
    message, text = _answer(db, "USD", language, (100_000,))
    assert message["indemnity_minor"] == 0 and message["interest_minor"] == 999
    assert interest in text
    assert "40" not in text
    assert "indemnit" not in text.lower()


@freeze_time(NOW)
@pytest.mark.parametrize("language", ["en", "fr"])
def test_fees_for_a_business_invoiced_in_pounds_claim_no_indemnity(
    db: Session, language: str
) -> None:
    message, text = _answer(db, "GBP", language, (100_000,))
    assert message["indemnity_minor"] == 0
    assert "40" not in text and "indemnit" not in text.lower()


@freeze_time(NOW)
@pytest.mark.parametrize(
    ("language", "total"), [("en", "(€80.00 in total)"), ("fr", "(80,00 € au total)")]
)
def test_fees_for_a_business_invoiced_in_euros_give_the_indemnity_in_euros(
    db: Session, language: str, total: str
) -> None:
    message, text = _answer(db, "EUR", language, (100_000, 50_000))
    assert message["indemnity_minor"] == 8_000
    assert total in text
    assert ("EUR 40 per invoice" if language == "en" else "40 € par facture") in text
