"""The assistant claims only what is due: an overdue 100 € invoice next to a 500 € one due in a
month made the reminder say "600 € past due" and "combien je dois ?" answer 600 €."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.balance import ActionGiveBalance
from actions.payments import ActionSendPaymentLink
from actions.reminders import ActionSendReminder
from relance.db.models import Debtor, Invoice, PaymentLink
from relance.nlg.formatting import long_date
from relance.nlg.renderer import render
from relance.nlg.templates_store import bundled_templates
from tests.actions.conftest import make_tracker, slots_for
from tests.factories import make_conversation, make_debtor, make_invoice

TODAY = date.today()


def _said(dispatcher: CollectingDispatcher, language: str) -> str:
    [message] = dispatcher.messages
    variables: dict[str, Any] = {
        k: v for k, v in message.items() if k not in ("response", "template")
    }
    return render(bundled_templates(), message["response"], language=language, variables=variables)


def _debtor(db: Session, language: str) -> tuple[Debtor, Invoice, Invoice]:
    owner = make_debtor(db, language=language, segment="b2b")
    overdue = make_invoice(db, owner, 10_000, due=TODAY - timedelta(days=10))
    later = make_invoice(db, owner, 50_000, due=TODAY + timedelta(days=30))
    return owner, overdue, later


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_reminder_claims_the_overdue_invoice_and_its_link_asks_for_it_only(
    db: Session, dispatcher: CollectingDispatcher, language: str
) -> None:
    owner, overdue, later = _debtor(db, language)
    conv = make_conversation(db, owner)
    tracker = make_tracker(
        slots_for(owner, conv),
        intent="EXTERNAL_reminder",
        entities=[
            {"entity": "stage", "value": "firm"},
            {"entity": "invoice_refs", "value": [overdue.number]},
        ],
    )
    ActionSendReminder().run(dispatcher, tracker, {})
    [message] = dispatcher.messages
    assert (message["amount_minor"], message["invoice_refs"]) == (10_000, [overdue.number])
    text = _said(dispatcher, language)
    amount = "100,00" if language == "fr" else "100.00"
    # written amounts: the bare digits also occur in generated names ("Debtor 126001")
    total = "600,00" if language == "fr" else "600.00"
    assert amount in text and total not in text and later.number not in text, text
    [link] = db.scalars(select(PaymentLink).where(PaymentLink.debtor_id == owner.id))
    assert (link.amount_minor, link.invoice_ids) == (10_000, [overdue.id])


def test_a_reminder_with_nothing_due_among_the_named_says_nothing(
    db: Session, dispatcher: CollectingDispatcher
) -> None:
    """A dunning stage naming only an invoice not yet due claims nothing (never 500 € "late")."""
    owner, _overdue, later = _debtor(db, "fr")
    conv = make_conversation(db, owner)
    tracker = make_tracker(
        slots_for(owner, conv),
        intent="EXTERNAL_reminder",
        entities=[
            {"entity": "stage", "value": "friendly"},
            {"entity": "invoice_refs", "value": [later.number]},
        ],
    )
    ActionSendReminder().run(dispatcher, tracker, {})
    assert dispatcher.messages == []


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "fr",
            "Le montant à régler dès maintenant est de 100,00 €. 500,00 € de plus arriveront à"
            " échéance plus tard, le {date} : rien à régler pour cela aujourd'hui.",
        ),
        (
            "en",
            "The amount due now is €100.00. A further €500.00 falls due later, on {date}:"
            " nothing to pay for it yet.",
        ),
    ],
)
def test_the_balance_says_what_is_due_now_and_apart_what_falls_due_later(
    db: Session, dispatcher: CollectingDispatcher, language: str, expected: str
) -> None:
    owner, _overdue, later = _debtor(db, language)
    conv = make_conversation(db, owner)
    ActionGiveBalance().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    [message] = dispatcher.messages
    assert message["response"] == "utter_balance"
    assert (message["balance_minor"], message["invoice_count"]) == (10_000, 1)
    assert (message["later_minor"], message["later_count"]) == (50_000, 1)
    assert message["later_due_date"] == later.due_date.isoformat()
    text = _said(dispatcher, language).replace("\xa0", " ")  # money's no-break space
    when = long_date(later.due_date, language)
    assert text.startswith(expected.format(date=when)), text


@pytest.mark.parametrize(
    ("language", "start"),
    [
        ("fr", "Rien n'est à régler pour l'instant. Votre prochaine facture, "),
        ("en", "Nothing is due right now. Your next invoice, "),
    ],
)
def test_an_invoice_not_yet_due_alone_is_said_with_its_date_not_as_a_balance(
    db: Session, dispatcher: CollectingDispatcher, language: str, start: str
) -> None:
    owner = make_debtor(db, language=language)
    later = make_invoice(db, owner, 50_000, due=TODAY + timedelta(days=30))
    conv = make_conversation(db, owner)
    ActionGiveBalance().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    [message] = dispatcher.messages
    assert message["response"] == "utter_balance_not_yet_due"
    assert (message["invoice_refs"], message["amount_minor"]) == ([later.number], 50_000)
    assert _said(dispatcher, language).startswith(start)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_link_asked_for_after_the_balance_is_for_what_is_due_now(
    db: Session, dispatcher: CollectingDispatcher, language: str
) -> None:
    """ "Combien je dois ?" said 100 € due now and 500 € next month; "yes, send the link" then
    gave a link for 600 €. The link asks for what is due now."""
    owner, overdue, _later = _debtor(db, language)
    conv = make_conversation(db, owner)
    ActionSendPaymentLink().run(
        dispatcher, make_tracker(slots_for(owner, conv), intent="request_payment_link"), {}
    )
    [message] = dispatcher.messages
    assert (message["response"], message["amount_minor"]) == ("utter_payment_link", 10_000)
    [link] = db.scalars(select(PaymentLink).where(PaymentLink.debtor_id == owner.id))
    assert (link.amount_minor, link.invoice_ids) == (10_000, [overdue.id])


def test_with_nothing_due_yet_the_link_pays_early(
    db: Session, dispatcher: CollectingDispatcher
) -> None:
    owner = make_debtor(db, language="fr")
    later = make_invoice(db, owner, 50_000, due=TODAY + timedelta(days=30))
    conv = make_conversation(db, owner)
    ActionSendPaymentLink().run(
        dispatcher, make_tracker(slots_for(owner, conv), intent="request_payment_link"), {}
    )
    [link] = db.scalars(select(PaymentLink).where(PaymentLink.debtor_id == owner.id))
    assert (link.amount_minor, link.invoice_ids) == (50_000, [later.id])
