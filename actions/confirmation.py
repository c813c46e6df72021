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
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import (
    ActionExecuted,
    ActiveLoop,
    EventType,
    FollowupAction,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
)
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions._common import previous_action, utter
from actions.plan_pending import plan_offer_just_made
from bot.components.evidence import CONFIRM_INTENT, CONSEQUENTIAL

ASK = "action_ask_confirmation"
# What a form that the debtor withdrew from says (the same words as the other forms' "no" rules).
CANCELLED = "utter_form_cancelled"
CONFIRM = "action_confirm_consequential"
PENDING_SLOT = "confirmation_pending"
FALLBACK = "nlu_fallback"


def guarded_intent(message: Mapping[str, Any]) -> str | None:
    """The intent under the confirmation label (the first ranked that is not a wrapper)."""
    for entry in message.get("intent_ranking") or []:
        if entry.get("name") not in (CONFIRM_INTENT, FALLBACK):
            return str(entry["name"])
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


def foreign_weak_intent(tracker: Tracker, own_intents: tuple[str, ...]) -> str | None:
    """The consequential intent a form cannot take as its answer, held back for confirmation:
    a weak opt-out, wrong person, dispute... in the middle of another form's question. A weak
    "yes" and a weak reading of the form's own intent are answers in context (None)."""
    message = tracker.latest_message or {}
    if (message.get("intent") or {}).get("name") != CONFIRM_INTENT:
        return None
    intent = guarded_intent(message)
    if intent is None or intent == "affirm" or intent in own_intents:
        return None
    return intent if intent in CONSEQUENTIAL else None


class FormThatAsksBeforeLeaving(FormValidationAction, ABC):
    """A form whose question a weak consequential request interrupts: the form ends and the
    confirmation question is asked (the same one as outside any form), so "yes" carries the
    request out and "no" changes nothing.

    Seen in conversation: "ne me dérangez plus" (a weak opt-out) while the promise form asked for
    a date was "not an answer", so the form asked for the date again and the debtor's wish was
    never heard; in the dispute form it became the dispute's description. The plan form does the
    same with a rule (its mappings refuse the label); these forms' free-text answers take any
    label, so the decision is made here, where the form's own intent is known. The slot the
    message was taken for this turn is emptied: it was no answer.
    """

    own_intents: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def name(self) -> str:
        """Abstract, so that the action server registers the forms, not this base."""

    def withdraws(self, tracker: Tracker) -> bool:
        """Whether the latest message takes the request back ("non laissez tomber" when the
        dispute form asks what is wrong): the form ends with "no problem, let's leave it there"
        and nothing is recorded. A form says which of its questions a "no" withdraws from; by
        default none (a "no" is an answer, e.g. "no reference")."""
        return False

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if self.withdraws(tracker):
            # Said here and followed by listening: as a FollowupAction of its own, the reply left
            # the policies with a turn no rule had seen, and they fell back ("I didn't
            # understand" right after "no problem, let's leave it there").
            utter(dispatcher, CANCELLED)
            return [*_form_ended(tracker), FollowupAction("action_listen")]
        if foreign_weak_intent(tracker, self.own_intents) is None:
            return await super().run(dispatcher, tracker, domain)
        return [*_form_ended(tracker), FollowupAction(ASK)]


def _form_ended(tracker: Tracker) -> list[EventType]:
    """The form stops here; the slot this message was taken for is emptied (it was no answer)."""
    requested = tracker.get_slot("requested_slot")
    emptied = [SlotSet(requested, None)] if requested else []
    return [*emptied, SlotSet("requested_slot", None), ActiveLoop(None)]


def declined(tracker: Tracker, question: str) -> bool:
    """The debtor said no (the NLU's `deny`) while the form asked `question`."""
    message = tracker.latest_message or {}
    intent = (message.get("intent") or {}).get("name")
    return intent == "deny" and tracker.get_slot("requested_slot") == question


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
            elif not plan_offer_just_made(tracker):
                return replay(_user_messages(tracker)[0], reverts=1)
        if intent is None:
            utter(dispatcher, "utter_please_rephrase")
            return [SlotSet(PENDING_SLOT, None)]
        utter(dispatcher, f"utter_confirm_{intent}")
        return [SlotSet(PENDING_SLOT, intent)]


def interrupted_form(tracker: Tracker) -> str | None:
    """The form the weak request interrupted: active when the message came, and ended in the same
    turn, right before the confirmation question (FormThatAsksBeforeLeaving or the plan form's
    rule). None when the question was asked outside any form."""
    events = list(tracker.events)
    asked = [i for i, e in enumerate(events) if e.get("event") == "action" and e.get("name") == ASK]
    if not asked:
        return None
    users = [i for i, e in enumerate(events[: asked[-1]]) if e.get("event") == "user"]
    if not users:
        return None
    message = users[-1]
    ended = any(
        e.get("event") == "active_loop" and not e.get("name")
        for e in events[message + 1 : asked[-1]]
    )
    if not ended:
        return None
    for event in reversed(events[:message]):
        if event.get("event") == "active_loop":
            return str(event["name"]) if event.get("name") else None
    return None


class ActionConfirmationDeclined(Action):
    """ "No" to the confirmation question: nothing changes. Seen in the simulator: a weak opt-out
    in the middle of the promise form, then "no", and the promise form was gone: "next friday"
    got "I didn't understand" and the next answer a handoff. The interrupted form asks its
    question again, as if the request had never come."""

    def name(self) -> str:
        return "action_confirmation_declined"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        form = interrupted_form(tracker)
        utter(dispatcher, "utter_confirmation_declined", resume=form is not None)
        return [SlotSet(PENDING_SLOT, None), *([FollowupAction(form)] if form else [])]


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
