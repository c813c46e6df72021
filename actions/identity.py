"""Identity check (identity_form), its question, and "wrong person"."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions._common import (
    bare_figure,
    conversation_of,
    debtor_of,
    language,
    latest_text,
    not_an_answer,
    unit_of_work,
    utter,
)
from relance.identity import service as identity
from relance.settings import get_settings

CHECKED, FAILED = "checked", "failed"

# pending_request is filled from the intent of every message (a global from_intent mapping, so a
# request made during the check is remembered). During the check a message read as a request with
# less certainty than this is an answer or an aside, not a change of mind: the ConsequenceGuard's
# threshold (bot/config.yml), the certainty the assistant acts on without asking.
REQUEST_SWITCH_CONFIDENCE = 0.85


def _request_to_keep(tracker: Tracker) -> str | None:
    """The request to restore when the latest message replaced it on weak evidence, else None.

    Seen in conversation: "je veux un échéancier", then at the postcode question "attendez je
    cherche... 75011" read as ask_balance at 0.5: the debtor was verified and got the balance,
    the plan they asked for forgotten. Only a message that reads as a request in its own right
    (not a bare figure, certainty at least REQUEST_SWITCH_CONFIDENCE) replaces the earlier one.
    """
    events = list(tracker.events)
    user_at = max((i for i, e in enumerate(events) if e.get("event") == "user"), default=-1)
    if user_at < 0:
        return None
    changed = [
        e
        for e in events[user_at + 1 :]
        if e.get("event") == "slot" and e.get("name") == "pending_request"
    ]
    earlier = next(
        (
            e.get("value")
            for e in reversed(events[:user_at])
            if e.get("event") == "slot" and e.get("name") == "pending_request"
        ),
        None,
    )
    if not changed or earlier is None or changed[-1].get("value") == earlier:
        return None
    message = tracker.latest_message or {}
    confidence = float((message.get("intent") or {}).get("confidence") or 0.0)
    if _answer_shaped(str(message.get("text") or "").strip()) or (
        confidence < REQUEST_SWITCH_CONFIDENCE
    ):
        return str(earlier)
    return None


# A token of a postcode or customer number: letters, digits and hyphens, at least one digit
# ("75011", "SW1A", "1AA", "C-10042").
_IDENTIFIER_TOKEN = re.compile(r"^(?=[\w-]*\d)[\w-]+$")


def _answer_shaped(text: str) -> bool:
    """Only figures, or only tokens that each hold a digit: the shape of a postcode or a
    reference, never of a sentence ("mdr", "ok 75011" and "why?" are not: a sentence is read by the NLU)."""
    if not text:
        return False
    if bare_figure(text):
        return True
    tokens = [t for t in re.split(r"[\s,;]+", text) if t]
    return bool(tokens) and all(_IDENTIFIER_TOKEN.match(t) for t in tokens)


def _attempts_left(tracker: Tracker) -> int:
    used = int(tracker.get_slot("identity_attempts") or 0)
    return max(get_settings().identity_max_attempts - used, 0)


class ActionAskIdentityAnswer(Action):
    def name(self) -> str:
        return "action_ask_identity_answer"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        utter(
            dispatcher,
            "utter_ask_identity_answer",
            identity_kind=get_settings().identity_check,
            attempts_left=_attempts_left(tracker),
        )
        return []


class ActionExplainIdentityCheck(Action):
    """ask_why_identity outside the identity form: the reason for the check (inside the form,
    its validator says the same and asks again)."""

    def name(self) -> str:
        return "action_explain_identity_check"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        utter(
            dispatcher,
            "utter_identity_why",
            identity_kind=get_settings().identity_check,
            # Asked after the check ("pourquoi vous me demandez ça ?" once verified): "once it's
            # confirmed" would read as if the answer had not been accepted.
            verified=bool(tracker.get_slot("identity_verified")),
        )
        return []


class ValidateIdentityForm(FormValidationAction):
    """Checks the answer; after `identity_max_attempts` wrong answers the form ends unverified
    (the rules then hand off to a collector)."""

    def name(self) -> str:
        return "validate_identity_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events = await super().run(dispatcher, tracker, domain)
        kept = _request_to_keep(tracker)
        return events if kept is None else [*events, SlotSet("pending_request", kept)]

    def extract_identity_answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """A postcode- or reference-shaped message typed at the question is the answer,
        whatever the NLU made of it.

        The domain's from_text mapping leaves out off-topic readings (so "mdr" is no attempt),
        and a list of figures is often read as off-topic: "75001 75002 … 75020" then went
        unchecked, which spared the attacker the attempts it should cost and, for a genuine
        "SW1A 1AA" read as off-topic, answered "I can only talk about your account".
        """
        if tracker.get_slot("requested_slot") != "identity_answer":
            return {}
        text = str((tracker.latest_message or {}).get("text") or "").strip()
        if not _answer_shaped(text) or tracker.get_slot("identity_answer") == text:
            return {}
        return {"identity_answer": text}

    def validate_identity_answer(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        """Every candidate answer in the message is one attempt; a message with none (a question,
        "why do you need that?") costs nothing and gets an explanation before the question again."""
        settings = get_settings()
        attempts = int(tracker.get_slot("identity_attempts") or 0)
        if slot_value == FAILED and attempts >= settings.identity_max_attempts:
            return {"identity_answer": FAILED, "identity_verified": False}
        if not _answer_shaped(latest_text(tracker)) and not_an_answer(tracker):
            # no attempt spent on an off-topic message...
            # ...and it gets the reason for the question, not the bare question again: "why do you
            # need that?" (often read as off-topic) was answered by repeating the question.
            utter(dispatcher, "utter_identity_why", identity_kind=settings.identity_check)
            return {"identity_answer": None}
        with unit_of_work() as session:
            debtor = debtor_of(session, tracker)
            if debtor is None:
                return {
                    "identity_answer": FAILED,
                    "identity_verified": False,
                    "identity_attempts": attempts + 1,
                }
            if identity.daily_limit_reached(session, debtor.id, settings.identity_max_attempts):
                # The day's wrong answers on every channel: locked, a collector takes over.
                identity.record_failure(session, debtor, attempts=attempts, locked=True)
                return {
                    "identity_answer": FAILED,
                    "identity_verified": False,
                    "identity_attempts": settings.identity_max_attempts,
                }
            result = identity.check(
                debtor,
                str(slot_value),
                method=settings.identity_check,
                attempts_left=settings.identity_max_attempts - attempts,
                language=language(tracker),
            )
            if result.verified:
                identity.mark_verified(
                    session,
                    debtor,
                    conversation_of(session, tracker),
                    channel=tracker.get_slot("channel"),
                )
                return {
                    "identity_answer": CHECKED,
                    "identity_verified": True,
                    "identity_attempts": 0,
                }
            if result.attempts == 0:
                utter(dispatcher, "utter_identity_why", identity_kind=settings.identity_check)
                return {"identity_answer": None}
            attempts = min(attempts + result.attempts, settings.identity_max_attempts)
            locked = attempts >= settings.identity_max_attempts
            identity.record_failure(
                session, debtor, attempts=attempts, locked=locked, candidates=result.attempts
            )
        if locked:
            return {
                "identity_answer": FAILED,
                "identity_verified": False,
                "identity_attempts": attempts,
            }
        utter(
            dispatcher,
            "utter_identity_mismatch",
            attempts_left=settings.identity_max_attempts - attempts,
        )
        return {"identity_answer": None, "identity_attempts": attempts}


class ActionMarkWrongPerson(Action):
    """The number does not belong to the debtor: flag the contact so nobody writes to it again."""

    def name(self) -> str:
        return "action_mark_wrong_person"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        with unit_of_work() as session:
            conversation = conversation_of(session, tracker)
            if conversation is not None:
                identity.mark_wrong_person(
                    session, conversation, channel=tracker.get_slot("channel")
                )
        return [SlotSet("identity_verified", False), SlotSet("pending_request", None)]
