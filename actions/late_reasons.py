"""The debtor says why they pay late: keep the reason on their case, then answer with empathy.

The category is decided by relance.late_reasons (from the words and the intent), not here; these
helpers only gather what the tracker knows about the message.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.orm import Session

from actions._common import (
    conversation_of,
    debtor_of,
    language,
    previous_action,
    unit_of_work,
    utter,
)
from relance.db.models import Debtor
from relance.late_reasons.service import StatedReason, record_stated

# How far back a request answered after the identity check may have been made (user turns).
LOOK_BACK_TURNS = 4
# The plan offer ("would paying in instalments help?") that follows the empathy.
PLAN_OFFER = "action_offer_plan"


def _stated(session: Session, tracker: Tracker, message: dict[str, Any]) -> StatedReason:
    """A user message (the tracker's latest, or a user event) with where it came from."""
    parsed = message.get("parse_data") or message
    metadata = message.get("metadata") or {}
    message_id = str(metadata.get("message_id") or "")
    return StatedReason(
        text=str(message.get("text") or ""),
        intent=(parsed.get("intent") or {}).get("name"),
        conversation=conversation_of(session, tracker),
        message_id=int(message_id) if message_id.isdigit() else None,
        channel=metadata.get("channel") or tracker.get_slot("channel"),
        language=language(tracker),
        identity_verified=bool(tracker.get_slot("identity_verified")),
    )


def stated_reason(session: Session, tracker: Tracker) -> StatedReason:
    """The latest user message with its intent, conversation, inbound message id and channel."""
    return _stated(session, tracker, tracker.latest_message or {})


def record_request_reason(session: Session, tracker: Tracker, debtor: Debtor, intent: str) -> None:
    """Record the reason carried by the message that made this request ("j'ai oublié", "I never
    got the invoice"): the latest one, or the one the identity check made wait."""
    users = [e for e in reversed(tracker.events) if e.get("event") == "user"]
    for event in users[:LOOK_BACK_TURNS] or [tracker.latest_message or {}]:
        stated = _stated(session, tracker, event)
        if stated.intent == intent:
            record_stated(session, debtor, stated)
            return


class ActionCannotPay(Action):
    """cannot_pay: record the stated reason (job loss, illness, cash flow…), then empathise."""

    def name(self) -> str:
        return "action_cannot_pay"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        with unit_of_work() as session:
            debtor = debtor_of(session, tracker)
            if debtor is not None:
                record_stated(session, debtor, stated_reason(session, tracker))
        # Answering the plan offer with more of the reason ("la tréso est pas top, un client
        # nous doit de l'argent") got the same two messages again, word for word: the debtor
        # was heard the first time, so the reason is acknowledged briefly before the offer.
        heard = previous_action(tracker) == PLAN_OFFER
        utter(dispatcher, "utter_cannot_pay_noted" if heard else "utter_cannot_pay_empathy")
        return []
