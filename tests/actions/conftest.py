"""Helpers to run actions in tests: a tracker built by hand and a collecting dispatcher."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from relance.db.models import Conversation, Debtor
from tests.factories import make_contact, make_conversation, make_debtor, make_invoice, make_message


def make_tracker(
    slots: dict[str, Any] | None = None,
    *,
    text: str = "",
    intent: str = "inform",
    entities: list[dict[str, Any]] | None = None,
    events: list[dict[str, Any]] | None = None,
    sender_id: str = "test-sender",
    active_loop: str | None = None,
) -> Tracker:
    values: dict[str, Any] = {"language": "fr", "channel": "sms", "identity_verified": True}
    values.update(slots or {})
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 1.0},
        "entities": entities or [],
    }
    loop = {"name": active_loop} if active_loop else {}
    return Tracker(sender_id, values, latest, events or [], False, None, loop, "action_listen")


def responses(dispatcher: CollectingDispatcher) -> list[str]:
    return [m["response"] for m in dispatcher.messages]


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    return CollectingDispatcher()


@pytest.fixture
def debtor_setup(db: Any) -> tuple[Debtor, Conversation]:
    """A consumer debtor (postcode 75011) with two open invoices, an SMS contact and a thread."""
    owner = make_debtor(db, postcode="75011", segment="consumer")
    make_invoice(db, owner, amount_minor=20_000)
    make_invoice(db, owner, amount_minor=10_000)
    make_contact(db, owner, address="+33611111111")
    conv = make_conversation(db, owner)
    make_message(db, conv, "bonjour", address="+33611111111")
    return owner, conv


def slots_for(owner: Debtor, conv: Conversation, **extra: Any) -> dict[str, Any]:
    return {"debtor_id": str(owner.id), "conversation_id": str(conv.id), **extra}
