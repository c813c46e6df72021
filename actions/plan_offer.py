"""Offer a payment plan only to a debtor who has none.

A plan covers all of a debtor's open invoices, so a second one would ask for the same money twice.
When a debtor with a plan running (or waiting for a collector) says they cannot pay, or asks for
a plan again, the assistant says where the plan stands and hands the conversation to a collector:
changing a schedule that was agreed is a person's decision, not the bot's.
"""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.orm import Session

from actions._common import (
    debtor_of,
    latest_text,
    next_installment_variables,
    unit_of_work,
    utter,
)
from actions.handoff import hand_off
from relance.db.models import Debtor
from relance.db.models.enums import PlanStatus
from relance.plans import repository as plans_repository

PLAN_CHANGE = "plan_change"


def plan_in_place(
    session: Session, dispatcher: CollectingDispatcher, tracker: Tracker, debtor: Debtor | None
) -> list[EventType] | None:
    """If the debtor has a live plan: say where it stands, hand off, and return the events.
    None when there is no such plan (the caller goes on as usual)."""
    plan = plans_repository.live_plan(session, debtor.id) if debtor is not None else None
    if plan is None:
        return None
    utter(
        dispatcher,
        "utter_plan_in_place",
        pending_approval=plan.status == PlanStatus.PENDING_APPROVAL,
        currency=plan.currency,
        **next_installment_variables(session, plan.debtor_id),
    )
    return hand_off(
        session, dispatcher, tracker, reason=PLAN_CHANGE, details=latest_text(tracker)[:500]
    )


class ActionOfferPlan(Action):
    """After a difficulty: "would paying in instalments help?" — or, on a plan, a collector."""

    def name(self) -> str:
        return "action_offer_plan"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        with unit_of_work() as session:
            handed = plan_in_place(session, dispatcher, tracker, debtor_of(session, tracker))
        if handed is not None:
            return handed
        utter(dispatcher, "utter_offer_plan")
        return []
