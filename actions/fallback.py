"""Custom fallback: ask to rephrase once; the second misunderstanding in a row hands off.

Either way the fallback ends the bot's turn (`FollowupAction("action_listen")`). Rasa's own
fallback reverts the user message, which ends the turn by itself; this one keeps the message (the
next fallback counts it), so without an explicit end the policies predicted on from the very state
that had no answer: the core fallback fired again, up to Rasa's ten actions per message, and one
"en 3 fois par mois" brought an apology then nine handoff messages. A second run in one turn (a
model predicting it anyway) says nothing.

A bare "oui", "non rien d'autre", "ok merci" or a thumbs-up that answers no question (after a
dispute was registered, a promise recorded) is not a misunderstanding: seen in the simulator and
by the monkey test (tests/e2e/test_monkey_conversation.py), each got "Sorry, I didn't
understand", and a second one handed the debtor to a collector. They are acknowledged ("All
right. Anything else, just reply to this message.") and do not count towards the handoff. A
message DIET could not place that still says how the debtor wants to spread the payment ("non
c'est trop, 3 fois plutôt" after a plan proposal: an installments entity, promise and plan
readings tied) goes to the plan form, as an unasked plan does; so does a request to change the
running plan ("can I change my plan", actions/plan_offer.py asks_to_change_the_plan).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions._common import latest_text, running_plan_variables, unit_of_work, utter
from actions.handoff import escalate_on_signal, hand_off
from actions.plan_offer import asks_to_change_the_plan
from actions.unasked import holds_a_plan, to_the_plan_form

NAME = "action_default_fallback"
# The router of unasked answers hands its leftovers to this fallback: not an answer in between.
QUIET = {"action_listen", "action_extract_slots", "action_route_unasked_answer", NAME}
END_OF_TURN = FollowupAction("action_listen")
# DIET's readings of a message that only acknowledges; what the fallback answers instead.
ACKNOWLEDGING_INTENTS = frozenset({"affirm", "deny", "thank"})
ACKNOWLEDGED = "utter_acknowledged"
# Messages made only of these emojis (and spaces/punctuation) acknowledge too: thumbs up, OK
# hand, folded hands, smiling faces, check marks.
_APPROVING = "\U0001f44d\U0001f44c\U0001f64f\U0001f642\U0001f60a\u263a\u2705\u2714"
_ACK_EMOJI = re.compile(rf"^[\s.!]*(?:[{_APPROVING}]\ufe0f?[\s.!]*)+$")


def acknowledges(message: Mapping[str, Any] | None) -> bool:
    """The message (a tracker's latest message, or a user event's parse data) only acknowledges
    (see the module docstring): DIET's top reading, before any fallback, is affirm, deny or
    thank at 0.8 or more, or it is made of approving emojis."""
    message = message or {}
    if _ACK_EMOJI.match(str(message.get("text") or "")):
        return True
    readings = [r for r in message.get("intent_ranking") or [] if r.get("name") != "nlu_fallback"]
    if not readings:
        readings = [message.get("intent") or {}]
    top = readings[0]
    return top.get("name") in ACKNOWLEDGING_INTENTS and float(top.get("confidence") or 0) >= 0.8


def consecutive_fallbacks(tracker: Tracker) -> int:
    """Fallbacks since the assistant last answered something else (this one not counted); a
    fallback that acknowledged a bare yes, no or thumbs-up was an answer, not a misunderstanding."""
    count = 0
    events = list(reversed(tracker.events))
    for at, event in enumerate(events):
        if event.get("event") != "action":
            continue
        name = event.get("name")
        if name == NAME:
            said = next((e for e in events[at + 1 :] if e.get("event") == "user"), None)
            if said is not None and acknowledges(
                {"text": said.get("text"), **(said.get("parse_data") or {})}
            ):
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
        with unit_of_work() as session:
            escalated = escalate_on_signal(session, dispatcher, tracker, latest_text(tracker))
            if escalated:
                return [*escalated, SlotSet("fallback_count", 0), END_OF_TURN]
            if acknowledges({"text": latest_text(tracker), **(tracker.latest_message or {})}):
                utter(dispatcher, ACKNOWLEDGED)
                return [SlotSet("fallback_count", 0), END_OF_TURN]
            if holds_a_plan(tracker) or asks_to_change_the_plan(session, tracker):
                return [SlotSet("fallback_count", 0), *to_the_plan_form(tracker)]
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
