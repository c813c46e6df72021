"""The assistant on an invoice payable in instalments (one row per instalment): the balance, the
reminder and the fees count the instalments that are due, never the ones still to come."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.balance import ActionExplainFees, ActionGiveBalance
from actions.reminders import ActionSendReminder
from relance.db.models import Debtor, Invoice
from relance.nlg.renderer import render
from relance.nlg.templates_store import bundled_templates
from tests.actions.conftest import make_tracker, slots_for
from tests.factories import make_conversation, make_debtor, make_invoice

TODAY = date.today()


def _schedule(db: Session, owner: Debtor, *offsets: int) -> list[Invoice]:
    """Instalments of 100.00 due `offset` days from today."""
    count = len(offsets)
    return [
        make_invoice(
            db,
            owner,
            10_000,
            due=TODAY + timedelta(days=offset),
            number=f"F-42 ({k}/{count})",
            instalment_of="F-42",
            instalment_no=k,
        )
        for k, offset in enumerate(offsets, start=1)
    ]


def _said(dispatcher: CollectingDispatcher, language: str) -> str:
    [message] = dispatcher.messages
    variables: dict[str, Any] = {
        k: v for k, v in message.items() if k not in ("response", "template")
    }
    return render(bundled_templates(), message["response"], language=language, variables=variables)


def test_the_balance_counts_the_due_instalment_only(db: Session, dispatcher) -> None:  # type: ignore[no-untyped-def]
    owner = make_debtor(db)
    _schedule(db, owner, -5, 25, 55)
    conv = make_conversation(db, owner)
    ActionGiveBalance().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    [message] = dispatcher.messages
    assert message["response"] == "utter_balance"
    assert (message["balance_minor"], message["invoice_count"]) == (10_000, 1)


def test_nothing_due_yet_is_said_with_the_next_instalment_not_as_nothing_owed(
    db: Session, dispatcher
) -> None:  # type: ignore[no-untyped-def]
    owner = make_debtor(db)
    first, _second = _schedule(db, owner, 10, 40)
    conv = make_conversation(db, owner)
    ActionGiveBalance().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    [message] = dispatcher.messages
    assert message["response"] == "utter_balance_not_yet_due"
    assert (message["invoice_refs"], message["amount_minor"]) == ([first.number], 10_000)
    assert message["due_date"] == first.due_date.isoformat()
    fr = _said(dispatcher, "fr")
    assert fr.startswith("Rien n'est à régler pour l'instant. Votre prochaine échéance, F-42 (1/2)")
    en = _said(dispatcher, "en")
    assert en.startswith("Nothing is due right now. Your next instalment, F-42 (1/2), of ")


def test_the_reminder_names_the_due_instalment_and_a_pre_due_one_when_named(
    db: Session, dispatcher
) -> None:  # type: ignore[no-untyped-def]
    owner = make_debtor(db)
    first, second, _third = _schedule(db, owner, -3, 7, 37)
    conv = make_conversation(db, owner)
    friendly = make_tracker(
        slots_for(owner, conv),
        intent="EXTERNAL_reminder",
        entities=[
            {"entity": "stage", "value": "friendly"},
            {"entity": "invoice_refs", "value": [first.number]},
        ],
    )
    ActionSendReminder().run(dispatcher, friendly, {})
    assert dispatcher.messages[0]["amount_minor"] == 10_000
    pre_due = make_tracker(
        slots_for(owner, conv),
        intent="EXTERNAL_reminder",
        entities=[
            {"entity": "stage", "value": "pre_due"},
            {"entity": "invoice_refs", "value": [second.number]},
        ],
    )
    later = CollectingDispatcher()
    ActionSendReminder().run(later, pre_due, {})
    [message] = later.messages
    # the one named only: a pre-due reminder says what comes due, its amount is not added to
    # the late one (nor the third)
    assert message["amount_minor"] == 10_000
    assert message["invoice_refs"] == [second.number]


def test_late_instalments_of_one_invoice_owe_the_fixed_indemnity_once(
    db: Session, dispatcher
) -> None:  # type: ignore[no-untyped-def]
    owner = make_debtor(db, segment="b2b")
    _schedule(db, owner, -60, -30, 30)
    make_invoice(db, owner, 5_000, due=TODAY - timedelta(days=10))
    conv = make_conversation(db, owner)
    ActionExplainFees().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    [message] = dispatcher.messages
    assert message["indemnity_minor"] == 8_000  # F-42 once, the other invoice once
