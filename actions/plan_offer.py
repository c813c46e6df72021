"""Offer a payment plan only to a debtor who has none.

A plan covers all of a debtor's open invoices, so a second one would ask for the same money twice.
When a debtor with a plan running says they cannot pay, or asks for a plan again ("je voudrais
payer en plusieurs fois", "je voudrais étaler sur 6 mois au lieu de 3"), the assistant says where
the plan stands (the next instalment and its date) and asks whether a collector should look at
changing it (`plan_status: in_place`): changing a schedule that was agreed is a person's decision,
not the bot's, but asking for it is the debtor's. The conversation used to be handed off at once,
so a debtor who only wanted to know where they stood got "I'm passing you to a member of our
team" and no answer. Now the rules (bot/data/rules/plans.yml) take the answer: "yes" hands off
with reason `plan_change` and the debtor's own request as details (actions/handoff.py), "no"
keeps the plan (action_decline_plan). A request still waiting for a collector's approval is said
to be with the team, and nothing is asked: a collector already has it.
"""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.orm import Session

from actions._common import (
    debtor_of,
    latest_text,
    next_installment_variables,
    previous_action,
    unit_of_work,
    utter,
)
from relance.db.models import Debtor
from relance.db.models.enums import PlanStatus
from relance.nlu_normalise import asks_to_change_plan
from relance.plans import repository as plans_repository

# plan_status once the debtor was told about the running plan and asked about a review.
IN_PLACE = "in_place"
# The actions that say where a running plan stands and ask about a review (the rules take the
# answer right after them).
ASKING_ACTIONS = frozenset(
    {"action_offer_plan", "action_evaluate_plan", "action_request_plan_approval"}
)
IDENTITY_FORM = "identity_form"


def plan_in_place(
    session: Session,
    dispatcher: CollectingDispatcher,
    debtor: Debtor | None,
    *,
    review: bool = True,
) -> list[EventType] | None:
    """If the debtor has a live plan: say where it stands and return the plan_status to set.
    None when there is no such plan (the caller goes on as usual).

    A running plan: `in_place`, with the question about a collector's review (`review`), or
    `created` without it (the plan the debtor has just agreed to). A request waiting for approval:
    `pending_approval`, nothing asked."""
    plan = plans_repository.live_plan(session, debtor.id) if debtor is not None else None
    if plan is None:
        return None
    pending = plan.status == PlanStatus.PENDING_APPROVAL
    utter(
        dispatcher,
        "utter_plan_in_place",
        pending_approval=pending,
        currency=plan.currency,
        **next_installment_variables(session, plan.debtor_id),
    )
    if pending:
        return [SlotSet("plan_status", "pending_approval")]
    if not review:
        return [SlotSet("plan_status", "created")]
    utter(dispatcher, "utter_ask_plan_review")
    return [SlotSet("plan_status", IN_PLACE)]


def asks_to_change_the_plan(session: Session, tracker: Tracker) -> bool:
    """The debtor, who has a live plan, asks to change it in words the NLU did not place: "can I
    change my plan" is out_of_scope at 1.0 for the CI model, and got "I can only help with your
    account, could you rephrase?" instead of the plan and the review question. The off-topic
    answer and the fallback send such a message the way of a plan request (actions/unasked.py
    to_the_plan_form: the identity check first, then the plan form, which asks nothing on a
    plan, and action_evaluate_plan, which says where the plan stands)."""
    if not asks_to_change_plan(latest_text(tracker)):
        return False
    debtor = debtor_of(session, tracker)
    return debtor is not None and plans_repository.live_plan(session, debtor.id) is not None


def answers_the_review_question(tracker: Tracker) -> bool:
    """The latest message answers "would you like a member of our team to look at changing it?"
    (asked right before it, on a running plan). A weak "oui" or a thumbs-up is confirmed and
    replayed (actions/confirmation.py): it still answers the question asked before."""
    return tracker.get_slot("plan_status") == IN_PLACE and (
        previous_action(tracker, applied=True) in ASKING_ACTIONS
    )


def the_request(tracker: Tracker) -> str | None:
    """The debtor's message before the latest one that was not an answer to the identity
    question: what they asked for (a plan, a change, a difficulty), which the collector reads
    rather than the "oui" or a postcode given in between. None if there is none. Applied events
    only: a weak "yes" replayed after a confirmation question was reverted."""
    loop: str | None = None
    said: list[str] = []
    for event in tracker.applied_events():
        kind = event.get("event")
        if kind == "active_loop":
            loop = event.get("name")
        elif kind == "user" and loop != IDENTITY_FORM:
            said.append(str(event.get("text") or ""))
    return said[-2] if len(said) >= 2 and said[-2] else None


class ActionOfferPlan(Action):
    """After a difficulty: "would paying in instalments help?", or, on a plan, where it stands."""

    def name(self) -> str:
        return "action_offer_plan"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        with unit_of_work() as session:
            stands = plan_in_place(session, dispatcher, debtor_of(session, tracker))
        if stands is not None:
            return stands
        utter(dispatcher, "utter_offer_plan")
        # No plan now: a status left from earlier (`in_place` before the plan ended) must not
        # make the rules take the answer for a review of a plan that no longer runs.
        return [SlotSet("plan_status", None)]
