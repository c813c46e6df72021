"""Ask before an action with consequences understood on weak evidence; "yes" carries it out.

The NLU's ConsequenceGuard (bot/components/consequence_guard.py) re-labels an opt-out, dispute,
already-paid, wrong-person, promise or plan-acceptance message whose evidence is weak as
`confirm_consequential`, keeping the guarded intent second in the ranking. One mechanism serves
every such intent:

- action_ask_confirmation asks the intent's question (utter_confirm_<intent>) and does nothing
  else. A weak "yes" to anything other than a plan offer has no consequence and is let through at
  once; a weak "yes" to the confirmation question itself asks it again.
- on "yes", action_confirm_consequential replays the guarded message as Rasa's own two-stage
  fallback does: both user turns are reverted and the message is re-added with its intent at
  confidence 1, so the rules that handle that intent today (identity check, forms, opt-out…)
  run exactly as if the evidence had been strong from the start;
- a "no" (rule) or any other answer leaves everything unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SlotSet, UserUtteranceReverted, UserUttered
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions._common import utter
from bot.components.evidence import CONFIRM_INTENT

ASK = "action_ask_confirmation"
CONFIRM = "action_confirm_consequential"
PENDING_SLOT = "confirmation_pending"
FALLBACK = "nlu_fallback"
# Actions that run between two user turns without being the bot's answer.
_QUIET = {"action_listen", "action_extract_slots", "action_session_start"}
# plan_status values for which a "yes" accepts the plan just evaluated (rules/plans.yml).
_PLAN_OFFERED = {"within_limits", "counter_offer"}


def guarded_intent(message: Mapping[str, Any]) -> str | None:
    """The intent under the confirmation label (the first ranked that is not a wrapper)."""
    for entry in message.get("intent_ranking") or []:
        if entry.get("name") not in (CONFIRM_INTENT, FALLBACK):
            return str(entry["name"])
    return None


def previous_action(tracker: Tracker) -> str | None:
    """The bot's last action before the latest user message (None at the start)."""
    seen_user = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            if seen_user:
                continue
            seen_user = True
        elif seen_user and event.get("event") == "action" and event.get("name") not in _QUIET:
            return str(event.get("name"))
    return None


def _user_messages(tracker: Tracker) -> list[dict[str, Any]]:
    """User events, latest first, with their parse data as Rasa stored it."""
    return [e for e in reversed(tracker.events) if e.get("event") == "user"]


def replay(event: Mapping[str, Any], reverts: int) -> list[EventType]:
    """Revert the last `reverts` user turns and re-add `event`'s message with its guarded
    intent at confidence 1 (entities and the api's metadata kept), after an action_listen."""
    parse_data = copy.deepcopy(dict(event.get("parse_data") or {}))
    intent = guarded_intent(parse_data)
    parse_data["intent"] = {"name": intent, "confidence": 1.0}
    parse_data["intent_ranking"] = [
        entry
        for entry in parse_data.get("intent_ranking") or []
        if entry.get("name") != CONFIRM_INTENT
    ]
    replayed = UserUttered(event.get("text"), parse_data, input_channel=event.get("input_channel"))
    replayed["metadata"] = event.get("metadata") or {}
    return [
        *(UserUtteranceReverted() for _ in range(reverts)),
        ActionExecuted("action_listen"),
        replayed,
    ]


class ActionAskConfirmation(Action):
    """confirm_consequential: ask the guarded intent's question, or let a harmless "yes" through."""

    def name(self) -> str:
        return ASK

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        intent = guarded_intent(tracker.latest_message)
        before = previous_action(tracker)
        if intent == "affirm":
            if before == ASK and tracker.get_slot(PENDING_SLOT):
                intent = str(tracker.get_slot(PENDING_SLOT))  # a weak "yes" to the question
            elif not (
                before == "action_evaluate_plan"
                and tracker.get_slot("plan_status") in _PLAN_OFFERED
            ):
                return replay(_user_messages(tracker)[0], reverts=1)
        if intent is None:
            utter(dispatcher, "utter_please_rephrase")
            return [SlotSet(PENDING_SLOT, None)]
        utter(dispatcher, f"utter_confirm_{intent}")
        return [SlotSet(PENDING_SLOT, intent)]


class ActionConfirmConsequential(Action):
    """ "Yes" to the confirmation question: replay the guarded message with its intent."""

    def name(self) -> str:
        return CONFIRM

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        messages = _user_messages(tracker)
        pending = tracker.get_slot(PENDING_SLOT)
        # The message the question was about: the oldest of the guarded messages just before
        # this "yes" (a weak "yes" to the question was guarded too and asked it again).
        found: tuple[int, dict[str, Any]] | None = None
        for reverts, message in enumerate(messages[1:], start=2):
            parse_data = message.get("parse_data") or {}
            if (parse_data.get("intent") or {}).get("name") != CONFIRM_INTENT:
                break
            if guarded_intent(parse_data) == pending:
                found = (reverts, message)
        if found is None:
            utter(dispatcher, "utter_please_rephrase")
            return [SlotSet(PENDING_SLOT, None)]
        return replay(found[1], reverts=found[0])
