"""Off-topic messages outside any form: "I can only help with your account", and, to a verified
debtor on a payment plan, where the plan stands.

Seen in conversation: right after agreeing a plan, "ok et je commence quand ?" / "when do i
start" is read as off-topic (teaching it as a balance question moved the off-topic false-accept
figure past its target, BENCHMARKS.md), and the debtor got the bare "could you rephrase?" to the
one question that matters then. Whatever the off-topic message was, the next instalment is what
a debtor on a plan most needs to know; it is said only after the identity check and never inside
a form (the forms' own off-topic rules keep the bare reply and ask their question again).
A request to change the running plan read as off-topic ("can I change my plan") is taken as the
plan request it is (actions/plan_offer.py asks_to_change_the_plan).
"""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions._common import running_plan_variables, unit_of_work, utter
from actions.plan_offer import asks_to_change_the_plan
from actions.plan_pending import ask_again
from actions.unasked import to_the_plan_form

NAME = "action_out_of_scope"


class ActionOutOfScope(Action):
    def name(self) -> str:
        return NAME

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        with unit_of_work() as session:
            if asks_to_change_the_plan(session, tracker):  # "can I change my plan"
                return to_the_plan_form(tracker)
            variables = running_plan_variables(session, tracker)
        # A plan proposal waiting for its yes or no is said again (actions/plan_pending.py).
        again = ask_again(tracker)
        utter(dispatcher, "utter_out_of_scope", question_follows=bool(again), **variables)
        return again
