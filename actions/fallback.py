"""Custom fallback: ask to rephrase once; the second misunderstanding in a row hands off.

Either way the fallback ends the bot's turn (`FollowupAction("action_listen")`). Rasa's own
fallback reverts the user message, which ends the turn by itself; this one keeps the message (the
next fallback counts it), so without an explicit end the policies predicted on from the very state
that had no answer: the core fallback fired again, up to Rasa's ten actions per message, and one
"en 3 fois par mois" brought an apology then nine handoff messages. A second run in one turn (a
model predicting it anyway) says nothing. A bare yes or no is no misunderstanding (see
`bare_yes_or_no`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions._common import latest_text, running_plan_variables, unit_of_work, utter
from actions.handoff import escalate_on_signal, hand_off

NAME = "action_default_fallback"
# The router of unasked answers hands its leftovers to this fallback: not an answer in between.
QUIET = {"action_listen", "action_extract_slots", "action_route_unasked_answer", NAME}
END_OF_TURN = FollowupAction("action_listen")
YES_OR_NO = ("affirm", "deny")
SURE = 0.9


def bare_yes_or_no(message: Mapping[str, Any] | None) -> bool:
    """A plain "oui" / "ok" / "nope" the NLU is sure of, with no question waiting for it.

    Monkey finding: such a yes or no out of context was "I didn't understand", and a second one
    handed the debtor to a collector (three handoffs in five turns of "non", "oui", "oui"). It was
    understood perfectly: it answers nothing, so the assistant asks what it can do, and it is not
    a misunderstanding on the way to a handoff."""
    intent = (message or {}).get("intent") or {}
    return intent.get("name") in YES_OR_NO and float(intent.get("confidence") or 0) >= SURE


def consecutive_fallbacks(tracker: Tracker) -> int:
    """Fallbacks since the assistant last answered something else (this one not counted); a
    fallback that answered a bare yes or no was an answer, not a misunderstanding."""
    count = 0
    events = list(reversed(tracker.events))
    for at, event in enumerate(events):
        if event.get("event") != "action":
            continue
        name = event.get("name")
        if name == NAME:
            said = next((e for e in events[at + 1 :] if e.get("event") == "user"), None)
            if said is not None and bare_yes_or_no(said.get("parse_data")):
                break
            count += 1
        elif name not in QUIET:
            break
    return count


def already_ran_this_turn(tracker: Tracker) -> bool:
    """The fallback already answered the latest user message."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return False
        if event.get("event") == "action" and event.get("name") == NAME:
            return True
    return False


class ActionDefaultFallback(Action):
    def name(self) -> str:
        return NAME

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if already_ran_this_turn(tracker):
            return [END_OF_TURN]
        if bare_yes_or_no(tracker.latest_message):
            utter(dispatcher, "utter_what_can_i_do")
            return [SlotSet("fallback_count", 0), END_OF_TURN]
        with unit_of_work() as session:
            escalated = escalate_on_signal(session, dispatcher, tracker, latest_text(tracker))
            if escalated:
                return [*escalated, SlotSet("fallback_count", 0), END_OF_TURN]
            if consecutive_fallbacks(tracker) >= 1:
                return [
                    *hand_off(
                        session,
                        dispatcher,
                        tracker,
                        reason="fallback",
                        details=latest_text(tracker)[:500] or None,
                    ),
                    SlotSet("fallback_count", 0),
                    END_OF_TURN,
                ]
            variables = running_plan_variables(session, tracker)
        utter(dispatcher, "utter_please_rephrase", **variables)
        return [SlotSet("fallback_count", float(consecutive_fallbacks(tracker) + 1)), END_OF_TURN]
