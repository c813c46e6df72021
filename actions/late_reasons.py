"""The debtor says why they pay late: keep the reason on their case, then answer with empathy.

The category is decided by relance.late_reasons (from the words and the intent), not here; this
action only gathers what the tracker knows about the message.
"""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.orm import Session

from actions._common import conversation_of, debtor_of, language, latest_text, unit_of_work, utter
from relance.late_reasons.service import StatedReason, record_stated


def stated_reason(session: Session, tracker: Tracker) -> StatedReason:
    """The latest user message with its intent, conversation, inbound message id and channel."""
    message = tracker.latest_message or {}
    metadata = message.get("metadata") or {}
    message_id = str(metadata.get("message_id") or "")
    return StatedReason(
        text=latest_text(tracker),
        intent=(message.get("intent") or {}).get("name"),
        conversation=conversation_of(session, tracker),
        message_id=int(message_id) if message_id.isdigit() else None,
        channel=metadata.get("channel") or tracker.get_slot("channel"),
        language=language(tracker),
        identity_verified=bool(tracker.get_slot("identity_verified")),
    )


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
        utter(dispatcher, "utter_cannot_pay_empathy")
        return []
