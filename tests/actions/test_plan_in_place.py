"""A debtor who already has a plan is never given a second one: the offer, the form, the
evaluation and the creation all say where the plan stands. Nothing is handed off there: on a
running plan the debtor is asked whether a collector should look at changing it (plan_status
`in_place`), and only their "yes" hands off (reason plan_change, their request as details); "no"
keeps the plan."""

from __future__ import annotations

import asyncio

import pytest
from rasa_sdk.events import SlotSet
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.handoff import ActionHandoff
from actions.plan_offer import ActionOfferPlan, the_request
from actions.plans import (
    ActionCreatePlan,
    ActionDeclinePlan,
    ActionEvaluatePlan,
    ActionRequestPlanApproval,
    ValidatePlanForm,
)
from relance.db.models import Handoff, PaymentPlan
from relance.errors import PolicyViolation
from relance.nlg.formatting import long_date, money
from relance.nlg.renderer import render
from relance.nlg.templates_store import bundled_templates
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


def _handoffs(db: Session, conv) -> list[Handoff]:
    return list(db.scalars(select(Handoff).where(Handoff.conversation_id == conv.id)))


def test_without_a_plan_the_offer_is_the_plain_question(dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    # A status left from a plan that has ended since must not make the rules ask for a review.
    tracker = make_tracker(slots_for(owner, conv, plan_status="in_place"))
    events = ActionOfferPlan().run(dispatcher, tracker, {})
    assert events == [SlotSet("plan_status", None)]
    assert responses(dispatcher) == ["utter_offer_plan"]


def test_on_an_active_plan_cannot_pay_says_the_next_instalment_and_hands_nothing_off(
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
    assert responses(dispatcher) == ["utter_plan_in_place", "utter_ask_plan_review"]
    said = dispatcher.messages[0]
    assert said["next_installment_minor"] == 10_000 and said["pending_approval"] is False
    assert said["next_installment_date"] == proposal["due_dates"][0]
    assert _slot(events, "plan_status") == "in_place"
    assert all(e.get("name") != "handed_off" for e in events)
    assert _handoffs(db, conv) == []
    assert len(_plans(db, owner)) == 1


def test_on_a_plan_the_form_asks_nothing_and_the_evaluation_says_where_it_stands(
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
    assert responses(dispatcher) == ["utter_plan_in_place", "utter_ask_plan_review"]
    assert dispatcher.messages[0]["next_installment_minor"] == 10_000
    assert _slot(events, "plan_status") == "in_place"
    assert _slot(events, "plan_proposal") is None
    assert _slot(events, "plan_installments") is None
    assert _handoffs(db, conv) == []


def test_yes_said_twice_creates_one_plan(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    proposal = _agree(db, owner, conv, dispatcher)
    tracker = make_tracker(slots_for(owner, conv, plan_proposal=proposal))
    assert _slot(ActionCreatePlan().run(dispatcher, tracker, {}), "plan_status") == "created"
    dispatcher.messages.clear()
    again = ActionCreatePlan().run(dispatcher, tracker, {})
    # The plan the debtor just agreed: where it stands, and no review asked of it.
    assert _slot(again, "plan_status") == "created"
    assert responses(dispatcher) == ["utter_plan_in_place"]
    assert len(_plans(db, owner)) == 1
    assert _handoffs(db, conv) == []


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
    assert [h.reason for h in _handoffs(db, conv)] == ["plan_approval"]
    dispatcher.messages.clear()
    again = ActionRequestPlanApproval().run(dispatcher, refused, {})
    assert responses(dispatcher) == ["utter_plan_in_place"]
    assert dispatcher.messages[0]["pending_approval"] is True
    assert dispatcher.messages[0]["next_installment_minor"] is None
    assert _slot(again, "plan_status") == "pending_approval"
    assert [p.status for p in _plans(db, owner)] == ["pending_approval"]
    assert [h.reason for h in _handoffs(db, conv)] == ["plan_approval"]


def test_a_plan_asked_again_while_one_waits_for_approval_asks_nothing(
    db: Session, dispatcher, debtor_setup
) -> None:
    """The request is with a collector already: said so, no review asked (the rules ask one only
    after `in_place`), no second handoff."""
    owner, conv = debtor_setup
    requested = plans.Proposal.from_dict(_agree(db, owner, conv, dispatcher, installments=10))
    plans.request_approval(db, owner, requested, reason="outside_limits")
    dispatcher.messages.clear()
    asked_again = make_tracker(
        slots_for(owner, conv, plan_installments=3, plan_frequency="monthly")
    )
    events = ActionEvaluatePlan().run(dispatcher, asked_again, {})
    assert responses(dispatcher) == ["utter_plan_in_place"]
    assert dispatcher.messages[0]["pending_approval"] is True
    assert _slot(events, "plan_status") == "pending_approval"
    assert _handoffs(db, conv) == []


def test_a_counter_offer_refused_on_a_plan_agreed_meanwhile_asks_about_a_review(
    db: Session, dispatcher, debtor_setup
) -> None:
    """The debtor refused the counter-offer in conversation while a plan was agreed on the
    portal: the plan that runs is said, and a review asked (no approval request, no handoff)."""
    owner, conv = debtor_setup
    tracker = make_tracker(slots_for(owner, conv, plan_installments=10, plan_frequency="weekly"))
    refused = make_tracker(
        slots_for(
            owner,
            conv,
            plan_status="counter_offer",
            plan_request=_slot(ActionEvaluatePlan().run(dispatcher, tracker, {}), "plan_request"),
        )
    )
    plans.create_plan(db, owner, plans.Proposal.from_dict(_agree(db, owner, conv, dispatcher)))
    dispatcher.messages.clear()
    events = ActionRequestPlanApproval().run(dispatcher, refused, {})
    assert responses(dispatcher) == ["utter_plan_in_place", "utter_ask_plan_review"]
    assert _slot(events, "plan_status") == "in_place"
    assert [p.status for p in _plans(db, owner)] == ["active"]
    assert _handoffs(db, conv) == []


def test_the_domain_refuses_a_second_plan(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    proposal = plans.Proposal.from_dict(_agree(db, owner, conv, dispatcher))
    plans.create_plan(db, owner, proposal)
    with pytest.raises(PolicyViolation) as refused:
        plans.create_plan(db, owner, proposal)
    assert refused.value.code == "plan_exists"
    assert len(_plans(db, owner)) == 1


# The review question and its answer: events as Rasa sends them to the action server.
def _user(text: str, intent: str = "inform") -> dict:
    return {"event": "user", "text": text, "parse_data": {"intent": {"name": intent}}}


def _action(name: str) -> dict:
    return {"event": "action", "name": name}


def _loop(name: str | None) -> dict:
    return {"event": "active_loop", "name": name}


ASKED_BEFORE_THE_IDENTITY_CHECK = [
    _action("action_listen"),
    _user("je voudrais étaler sur 6 mois au lieu de 3", "request_payment_plan"),
    _action("identity_form"),
    _loop("identity_form"),
    _action("action_listen"),
    _user("75011"),
    _action("identity_form"),
    _loop(None),
    _action("utter_identity_verified"),
    _action("plan_form"),
    _loop("plan_form"),
    _loop(None),
    _action("action_evaluate_plan"),
    _action("action_listen"),
    _user("oui", "affirm"),
]


def _answer(owner, conv, text: str, intent: str, events: list[dict] | None = None):
    return make_tracker(
        slots_for(owner, conv, plan_status="in_place"),
        text=text,
        intent=intent,
        events=events if events is not None else ASKED_BEFORE_THE_IDENTITY_CHECK,
    )


def test_the_request_is_the_debtors_words_not_the_identity_answer() -> None:
    assert the_request(make_tracker(events=ASKED_BEFORE_THE_IDENTITY_CHECK)) == (
        "je voudrais étaler sur 6 mois au lieu de 3"
    )
    assert the_request(make_tracker(events=[_user("oui", "affirm")])) is None


def test_a_weak_yes_replayed_is_not_the_request() -> None:
    """A weak "yeah" was asked about (confirmation), then reverted and replayed as affirm."""
    events = [
        _user("can I change my plan", "out_of_scope"),
        _action("action_evaluate_plan"),
        _action("action_listen"),
        _user("yeah", "confirm_consequential"),
        _action("action_ask_confirmation"),
        _action("action_listen"),
        _user("yes", "affirm"),
        {"event": "rewind"},
        {"event": "rewind"},
        _action("action_listen"),
        _user("yeah", "affirm"),
    ]
    assert the_request(make_tracker(events=events)) == "can I change my plan"


def test_yes_to_the_review_hands_off_with_the_request(
    db: Session, dispatcher, debtor_setup
) -> None:
    owner, conv = debtor_setup
    events = ActionHandoff().run(dispatcher, _answer(owner, conv, "oui", "affirm"), {})
    assert responses(dispatcher) == ["utter_handoff"]
    assert _slot(events, "handed_off") is True
    assert [(h.reason, h.details) for h in _handoffs(db, conv)] == [
        ("plan_change", "je voudrais étaler sur 6 mois au lieu de 3")
    ]


def test_a_handoff_not_answering_the_review_keeps_its_reason(
    db: Session, dispatcher, debtor_setup
) -> None:
    """The same status, but the question was not the bot's last answer (the debtor moved on and
    asked for a person later): an ordinary request, the debtor's own words."""
    owner, conv = debtor_setup
    moved_on = [*ASKED_BEFORE_THE_IDENTITY_CHECK[:-1], _action("action_give_balance")]
    moved_on += [_action("action_listen"), _user("je veux parler à quelqu'un", "request_human")]
    tracker = _answer(owner, conv, "je veux parler à quelqu'un", "request_human", moved_on)
    ActionHandoff().run(dispatcher, tracker, {})
    assert [(h.reason, h.details) for h in _handoffs(db, conv)] == [
        ("requested", "je veux parler à quelqu'un")
    ]


def test_no_to_the_review_keeps_the_plan(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    events = ActionDeclinePlan().run(dispatcher, _answer(owner, conv, "non", "deny"), {})
    assert responses(dispatcher) == ["utter_plan_kept"]
    assert _slot(events, "plan_status") == "declined"
    assert _handoffs(db, conv) == []
    dispatcher.messages.clear()
    # "No" to a plan proposal is still the plain refusal.
    proposal_refused = make_tracker(slots_for(owner, conv, plan_status="within_limits"))
    ActionDeclinePlan().run(dispatcher, proposal_refused, {})
    assert responses(dispatcher) == ["utter_plan_declined"]


def test_the_review_wording_in_both_languages() -> None:
    for language in ("fr", "en"):
        asked = render(bundled_templates(), "utter_ask_plan_review", language=language)
        kept = render(bundled_templates(), "utter_plan_kept", language=language)
        assert asked.endswith("?") and kept, (asked, kept)
        stands = render(
            bundled_templates(),
            "utter_plan_in_place",
            language=language,
            variables={
                "pending_approval": False,
                "currency": "EUR",
                "next_installment_minor": 20_000,
                "next_installment_date": "2026-12-17",
            },
        )
        assert money(20_000, "EUR", language) in stands, stands
        assert long_date("2026-12-17", language) in stands, stands


def test_a_weak_yes_replayed_still_answers_the_review(
    db: Session, dispatcher, debtor_setup
) -> None:
    """The monkey's "😡😡😡" after the review question: a weak yes, let through by the confirmation
    (reverted and replayed as affirm). It answers the review question: a plan change, not a
    person nobody asked for."""
    owner, conv = debtor_setup
    replayed = [
        *ASKED_BEFORE_THE_IDENTITY_CHECK[:-1],
        _user("👍", "confirm_consequential"),
        _action("action_ask_confirmation"),
        {"event": "rewind"},
        _action("action_listen"),
        _user("👍", "affirm"),
    ]
    ActionHandoff().run(dispatcher, _answer(owner, conv, "👍", "affirm", replayed), {})
    assert [(h.reason, h.details) for h in _handoffs(db, conv)] == [
        ("plan_change", "je voudrais étaler sur 6 mois au lieu de 3")
    ]
