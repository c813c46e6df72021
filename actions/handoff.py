"""Handoff to a collector, vulnerability/legal signals, and the collector handing back."""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.orm import Session

from actions._common import conversation_of, latest_text, unit_of_work, utter
from actions.plan_offer import answers_the_review_question, the_request
from relance.db.models.enums import ConversationMode
from relance.handoff import service as handoff
from relance.settings import get_settings


def hand_off(
    session: Session,
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    *,
    reason: str,
    details: str | None = None,
    notify: bool = True,
) -> list[EventType]:
    """Open the handoff, tell the debtor, and flag the channel (voice transfers the call)."""
    conversation = conversation_of(session, tracker)
    if conversation is not None:
        handoff.create_handoff(session, conversation, reason=reason, details=details)
    if notify:
        utter(dispatcher, "utter_handoff", custom={"handoff": True, "reason": reason})
    return [SlotSet("handed_off", True)]


def escalate_on_signal(
    session: Session, dispatcher: CollectingDispatcher, tracker: Tracker, text: str
) -> list[EventType]:
    """Hand off at once when the words suggest vulnerability or a legal matter."""
    signal = handoff.detect_signal(text)
    if signal is None or tracker.get_slot("handed_off"):
        return []
    return hand_off(session, dispatcher, tracker, reason=signal, details=text[:500])


PLAN_CHANGE = "plan_change"


def _reason(tracker: Tracker) -> str:
    attempts = int(tracker.get_slot("identity_attempts") or 0)
    if (
        not tracker.get_slot("identity_verified")
        and attempts >= get_settings().identity_max_attempts
    ):
        return "identity_failed"
    signal = handoff.detect_signal(latest_text(tracker))
    if signal is None and answers_the_review_question(tracker):
        return PLAN_CHANGE
    return signal or "requested"


def _details(tracker: Tracker, reason: str) -> str | None:
    """What the collector reads first: the debtor's latest words, or for a plan change the
    request that led to it ("je voudrais étaler sur 6 mois au lieu de 3"), not the "oui" to the
    review question."""
    said = (the_request(tracker) if reason == PLAN_CHANGE else None) or latest_text(tracker)
    return said[:500] or None


class ActionHandoff(Action):
    def name(self) -> str:
        return "action_handoff"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        reason = _reason(tracker)
        with unit_of_work() as session:
            return hand_off(
                session, dispatcher, tracker, reason=reason, details=_details(tracker, reason)
            )


class ActionResumeConversation(Action):
    """EXTERNAL_resume: a collector gave the conversation back; start clean and say so."""

    def name(self) -> str:
        return "action_resume_conversation"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        with unit_of_work() as session:
            conversation = conversation_of(session, tracker)
            if conversation is not None and conversation.mode != ConversationMode.BOT:
                handoff.resume_bot(session, conversation, actor="bot")
        utter(dispatcher, "utter_resumed")
        return [
            SlotSet("handed_off", False),
            SlotSet("fallback_count", 0),
            SlotSet("identity_attempts", 0),
            SlotSet("identity_answer", None),
            SlotSet("plan_status", None),
            SlotSet("pending_request", None),
        ]
