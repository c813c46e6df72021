"""Custom fallback: ask to rephrase once; the second misunderstanding in a row hands off."""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions._common import latest_text, unit_of_work, utter
from actions.handoff import escalate_on_signal, hand_off

NAME = "action_default_fallback"
QUIET = {"action_listen", "action_extract_slots", NAME}


def consecutive_fallbacks(tracker: Tracker) -> int:
    """Fallbacks since the assistant last answered something else (this one not counted)."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") != "action":
            continue
        name = event.get("name")
        if name == NAME:
            count += 1
        elif name not in QUIET:
            break
    return count


class ActionDefaultFallback(Action):
    def name(self) -> str:
        return NAME

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
            domain: DomainDict) -> list[EventType]:
        with unit_of_work() as session:
            escalated = escalate_on_signal(session, dispatcher, tracker, latest_text(tracker))
            if escalated:
                return [*escalated, SlotSet("fallback_count", 0)]
            if consecutive_fallbacks(tracker) >= 1:
                return [*hand_off(session, dispatcher, tracker, reason="fallback",
                                  details=latest_text(tracker)[:500] or None),
                        SlotSet("fallback_count", 0)]
        utter(dispatcher, "utter_please_rephrase")
        return [SlotSet("fallback_count", float(consecutive_fallbacks(tracker) + 1))]
