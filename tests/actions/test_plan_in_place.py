"""A debtor who already has a plan is never given a second one: the offer, the form, the
evaluation and the creation all say where the plan stands and hand off to a collector."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.plan_offer import ActionOfferPlan
from actions.plans import (
    ActionCreatePlan,
    ActionEvaluatePlan,
    ActionRequestPlanApproval,
    ValidatePlanForm,
)
from relance.db.models import Handoff, PaymentPlan
from relance.errors import PolicyViolation
from relance.plans import service as plans
from tests.actions.conftest import make_tracker, responses, slots_for

FORM_SLOTS = ["plan_installments", "plan_frequency"]


def _slot(events: list[dict], name: str) -> object:
    return next(e["value"] for e in reversed(events) if e.get("name") == name)


def _agree(db: Session, owner, conv, dispatcher, installments: int = 3) -> dict:
    tracker = make_tracker(
        slots_for(owner, conv, plan_installments=installments, plan_frequency="monthly")
    )
    events = ActionEvaluatePlan().run(dispatcher, tracker, {})
    return _slot(events, "plan_proposal")  # type: ignore[return-value]


def _plans(db: Session, owner) -> list[PaymentPlan]:
    return list(db.scalars(select(PaymentPlan).where(PaymentPlan.debtor_id == owner.id)))


def test_without_a_plan_the_offer_is_the_plain_question(dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    events = ActionOfferPlan().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    assert events == [] and responses(dispatcher) == ["utter_offer_plan"]


def test_on_an_active_plan_cannot_pay_goes_to_a_collector_with_the_next_instalment(
    db: Session, dispatcher, debtor_setup
) -> None:
    owner, conv = debtor_setup
    proposal = _agree(db, owner, conv, dispatcher)
    ActionCreatePlan().run(
        dispatcher, make_tracker(slots_for(owner, conv, plan_proposal=proposal)), {}
    )
    dispatcher.messages.clear()
    tracker = make_tracker(
        slots_for(owner, conv), text="je ne pourrai pas payer la prochaine", intent="cannot_pay"
    )
    events = ActionOfferPlan().run(dispatcher, tracker, {})
    assert responses(dispatcher) == ["utter_plan_in_place", "utter_handoff"]
    said = dispatcher.messages[0]
    assert said["next_installment_minor"] == 10_000 and said["pending_approval"] is False
    assert said["next_installment_date"] == proposal["due_dates"][0]
    assert _slot(events, "handed_off") is True
    handoff = db.scalars(select(Handoff).where(Handoff.conversation_id == conv.id)).one()
    assert (handoff.reason, handoff.details) == (
        "plan_change",
        "je ne pourrai pas payer la prochaine",
    )
    assert len(_plans(db, owner)) == 1


def test_on_a_plan_the_form_asks_nothing_and_the_evaluation_hands_off(
    db: Session, dispatcher, debtor_setup
) -> None:
    owner, conv = debtor_setup
    tracker = make_tracker(slots_for(owner, conv))
    form = ValidatePlanForm()
    assert asyncio.run(form.required_slots(FORM_SLOTS, dispatcher, tracker, {})) == FORM_SLOTS
    proposal = _agree(db, owner, conv, dispatcher)
    ActionCreatePlan().run(
        dispatcher, make_tracker(slots_for(owner, conv, plan_proposal=proposal)), {}
    )
    assert asyncio.run(form.required_slots(FORM_SLOTS, dispatcher, tracker, {})) == []
    dispatcher.messages.clear()
    asked_again = make_tracker(slots_for(owner, conv, plan_installments=2, plan_frequency="weekly"))
    events = ActionEvaluatePlan().run(dispatcher, asked_again, {})
    assert responses(dispatcher) == ["utter_plan_in_place", "utter_handoff"]
    assert _slot(events, "plan_status") == "declined"
    assert _slot(events, "plan_proposal") is None


def test_yes_said_twice_creates_one_plan(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    proposal = _agree(db, owner, conv, dispatcher)
    tracker = make_tracker(slots_for(owner, conv, plan_proposal=proposal))
    assert _slot(ActionCreatePlan().run(dispatcher, tracker, {}), "plan_status") == "created"
    dispatcher.messages.clear()
    again = ActionCreatePlan().run(dispatcher, tracker, {})
    assert _slot(again, "plan_status") == "declined"
    assert responses(dispatcher) == ["utter_plan_in_place", "utter_handoff"]
    assert len(_plans(db, owner)) == 1


def test_a_pending_request_is_not_asked_twice(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    tracker = make_tracker(slots_for(owner, conv, plan_installments=10, plan_frequency="weekly"))
    events = ActionEvaluatePlan().run(dispatcher, tracker, {})
    refused = make_tracker(
        slots_for(
            owner, conv, plan_status="counter_offer", plan_request=_slot(events, "plan_request")
        )
    )
    ActionRequestPlanApproval().run(dispatcher, refused, {})
    dispatcher.messages.clear()
    ActionRequestPlanApproval().run(dispatcher, refused, {})
    assert responses(dispatcher) == ["utter_plan_in_place", "utter_handoff"]
    assert dispatcher.messages[0]["pending_approval"] is True
    assert dispatcher.messages[0]["next_installment_minor"] is None
    assert [p.status for p in _plans(db, owner)] == ["pending_approval"]


def test_the_domain_refuses_a_second_plan(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    proposal = plans.Proposal.from_dict(_agree(db, owner, conv, dispatcher))
    plans.create_plan(db, owner, proposal)
    with pytest.raises(PolicyViolation) as refused:
        plans.create_plan(db, owner, proposal)
    assert refused.value.code == "plan_exists"
    assert len(_plans(db, owner)) == 1
