"""Simulator finding: a debtor who owes pounds said "200 pounds" in the promise form and was
told "noted: €200.00"; "200 euros" to the same debtor would have been noted as £200. The
promise is recorded and said in the account's currency, a sum named in another currency is
asked again, and the "for example" of an unreadable amount is in the account's currency."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.promises import ActionAskPromiseAmount, ActionRecordPromise, ValidatePromiseForm
from relance.db.models import Promise
from relance.db.models.enums import InvoiceStatus
from relance.nlg.renderer import render
from relance.nlg.templates_store import bundled_templates
from tests.actions.conftest import make_tracker, responses, slots_for
from tests.factories import make_conversation, make_debtor, make_invoice


def _pounds_debtor(db: Session, *, status: InvoiceStatus = InvoiceStatus.OPEN):  # type: ignore[no-untyped-def]
    owner = make_debtor(db, language="en", segment="consumer")
    make_invoice(db, owner, amount_minor=90_000, currency="GBP", status=status)
    return owner, make_conversation(db, owner)


def _said(message: dict, language: str = "en") -> str:  # type: ignore[type-arg]
    return render(
        bundled_templates(),
        message["response"],
        language=language,
        variables={**message, "creditor_name": "x", "creditor_phone": "x"},
    )


@pytest.mark.parametrize("text", ["200 pounds", "£200", "200 gbp", "200 quid"])
def test_an_amount_in_the_accounts_currency_is_taken(db: Session, dispatcher, text: str) -> None:
    owner, conv = _pounds_debtor(db)
    tracker = make_tracker(slots_for(owner, conv, language="en"), text=text)
    result = ValidatePromiseForm().validate_promise_amount(text, dispatcher, tracker, {})
    assert result == {"promise_amount": 20_000}, dispatcher.messages


@pytest.mark.parametrize(
    ("text", "language"), [("200 euros", "en"), ("200 €", "fr"), ("$200", "en")]
)
def test_an_amount_in_another_currency_is_asked_again_in_the_accounts(
    db: Session, dispatcher, text: str, language: str
) -> None:
    owner, conv = _pounds_debtor(db)
    tracker = make_tracker(slots_for(owner, conv, language=language), text=text)
    result = ValidatePromiseForm().validate_promise_amount(text, dispatcher, tracker, {})
    assert result == {"promise_amount": None}
    [message] = dispatcher.messages
    assert message["response"] == "utter_promise_amount_wrong_currency"
    assert message["currency"] == "GBP"
    said = _said(message, language)
    assert "£" in said and ("pounds" in said or "livres" in said), said


def test_the_amount_hint_is_in_the_accounts_currency(db: Session, dispatcher) -> None:
    owner, conv = _pounds_debtor(db)
    tracker = make_tracker(slots_for(owner, conv, language="en"), text="blah")
    ValidatePromiseForm().validate_promise_amount("blah", dispatcher, tracker, {})
    [message] = dispatcher.messages
    assert message["response"] == "utter_invalid_answer"
    for language, shown in (("en", "£150.00"), ("fr", "150,00\u00a0£")):
        said = _said(message, language)
        assert shown in said and "euros" not in said, said
    # Without a currency (other fields), the wording is unchanged.
    plain = _said({"response": "utter_invalid_answer", "field": "amount"})
    assert "150 euros" in plain, plain


def test_a_promise_with_nothing_open_is_in_the_accounts_currency(db: Session, dispatcher) -> None:
    """The only invoice in pounds is disputed: nothing open, and "EUR" was assumed."""
    owner, conv = _pounds_debtor(db, status=InvoiceStatus.DISPUTED)
    when = (date.today() + timedelta(days=5)).isoformat()
    slots = slots_for(owner, conv, language="en", promise_date=when, promise_amount=20_000)
    ActionRecordPromise().run(dispatcher, make_tracker(slots), {})
    promise = db.scalars(select(Promise).where(Promise.debtor_id == owner.id)).one()
    assert promise.currency == "GBP"
    assert "£200.00" in _said(dispatcher.messages[0]), dispatcher.messages
    dispatcher.messages.clear()
    ActionAskPromiseAmount().run(dispatcher, make_tracker(slots), {})
    assert dispatcher.messages[0]["currency"] == "GBP"
    assert responses(dispatcher) == ["utter_ask_promise_amount"]
