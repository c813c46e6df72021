"""Off-topic outside forms: the bare reply, and to a verified debtor on a plan, the next
instalment ("ok et je commence quand ?" right after agreeing a plan is read as off-topic)."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from actions.fallback import ActionDefaultFallback
from actions.off_topic import ActionOutOfScope
from relance.nlg.formatting import money
from relance.nlg.renderer import render
from relance.nlg.templates_store import bundled_templates
from tests.actions.conftest import make_tracker, responses, slots_for
from tests.factories import make_plan


def _said(dispatcher) -> dict:
    [message] = dispatcher.messages
    assert message["response"] == "utter_out_of_scope"
    return message


def test_without_a_plan_the_reply_is_the_bare_one(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    ActionOutOfScope().run(
        dispatcher, make_tracker(slots_for(owner, conv), intent="out_of_scope"), {}
    )
    assert _said(dispatcher).get("next_installment_minor") is None


def test_on_a_plan_the_reply_names_the_next_instalment(
    db: Session, dispatcher, debtor_setup
) -> None:
    owner, conv = debtor_setup
    make_plan(db, owner, (7_000, 8_000), first_due=date(2026, 12, 16))
    tracker = make_tracker(
        slots_for(owner, conv), text="ok et je commence quand ?", intent="out_of_scope"
    )
    ActionOutOfScope().run(dispatcher, tracker, {})
    message = _said(dispatcher)
    assert message["next_installment_minor"] == 7_000
    assert message["next_installment_date"] == "2026-12-16"
    variables = {key: value for key, value in message.items() if key != "response"}
    text = render(bundled_templates(), "utter_out_of_scope", language="fr", variables=variables)
    assert (
        f"prochaine échéance est de {money(7_000, 'EUR', 'fr')}, à régler au plus tard le 16 décembre 2026"
        in text
    ), text
    english = render(bundled_templates(), "utter_out_of_scope", language="en", variables=variables)
    assert "Your next instalment is" in english and "16 December 2026" in english, english


def test_before_the_identity_check_nothing_about_the_plan_is_said(
    db: Session, dispatcher, debtor_setup
) -> None:
    owner, conv = debtor_setup
    make_plan(db, owner, (7_000, 8_000), first_due=date(2026, 12, 16))
    tracker = make_tracker(slots_for(owner, conv, identity_verified=False), intent="out_of_scope")
    ActionOutOfScope().run(dispatcher, tracker, {})
    assert _said(dispatcher).get("next_installment_minor") is None
    assert responses(dispatcher) == ["utter_out_of_scope"]


def test_inside_a_form_the_reply_stays_bare(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    make_plan(db, owner, (7_000, 8_000), first_due=date(2026, 12, 16))
    tracker = make_tracker(slots_for(owner, conv), intent="out_of_scope")
    tracker.active_loop = {"name": "promise_form"}
    ActionOutOfScope().run(dispatcher, tracker, {})
    assert _said(dispatcher).get("next_installment_minor") is None


def test_a_misunderstood_message_on_a_plan_also_names_the_next_instalment(
    db: Session, dispatcher, debtor_setup
) -> None:
    """Simulator finding: right after agreeing a plan, "when is the first one" was read as a
    stray date ("first"), so an unasked answer: the fallback said only "could you say it
    differently?". It now names the next instalment too, as the off-topic reply does; before the
    identity check and inside a form it stays bare."""
    owner, conv = debtor_setup
    make_plan(db, owner, (7_000, 8_000), first_due=date(2026, 12, 16))
    tracker = make_tracker(slots_for(owner, conv), text="when is the first one", intent="inform")
    ActionDefaultFallback().run(dispatcher, tracker, {})
    [message] = dispatcher.messages
    assert message["response"] == "utter_please_rephrase"
    variables = {key: value for key, value in message.items() if key != "response"}
    english = render(
        bundled_templates(), "utter_please_rephrase", language="en", variables=variables
    )
    assert "Your next instalment is" in english and "16 December 2026" in english, english

    dispatcher.messages.clear()
    unverified = make_tracker(slots_for(owner, conv, identity_verified=False), intent="inform")
    ActionDefaultFallback().run(dispatcher, unverified, {})
    assert dispatcher.messages[0].get("next_installment_minor") is None


def _routed(events: list[dict]) -> tuple[object, object]:
    pending = next(e["value"] for e in events if e.get("name") == "pending_request")
    followup = next(e["name"] for e in events if e.get("event") == "followup")
    return pending, followup


def test_a_plan_change_read_as_off_topic_is_the_plan_request(
    db: Session, dispatcher, debtor_setup
) -> None:
    """ "can I change my plan" is out_of_scope at 1.0 for the CI model: on a plan, it goes the way
    of a plan request (the plan form, which says where the plan stands and asks about a review),
    behind the identity check; without a plan it stays off-topic."""
    owner, conv = debtor_setup
    asked = make_tracker(slots_for(owner, conv), text="can I change my plan", intent="out_of_scope")
    ActionOutOfScope().run(dispatcher, asked, {})
    assert _said(dispatcher).get("next_installment_minor") is None  # no plan: off-topic

    dispatcher.messages.clear()
    make_plan(db, owner, (7_000, 8_000), first_due=date(2026, 12, 16))
    events = ActionOutOfScope().run(dispatcher, asked, {})
    assert dispatcher.messages == []
    assert _routed(events) == ("payment_plan", "plan_form")
    unverified = make_tracker(
        slots_for(owner, conv, identity_verified=False),
        text="je voudrais modifier mon échéancier",
        intent="out_of_scope",
    )
    assert _routed(ActionOutOfScope().run(dispatcher, unverified, {})) == (
        "payment_plan",
        "identity_form",
    )
    assert dispatcher.messages == []


def test_a_plan_change_the_nlu_could_not_place_is_the_plan_request(
    db: Session, dispatcher, debtor_setup
) -> None:
    owner, conv = debtor_setup
    make_plan(db, owner, (7_000, 8_000), first_due=date(2026, 12, 16))
    tracker = make_tracker(
        slots_for(owner, conv), text="can i change my payment plan?", intent="nlu_fallback"
    )
    events = ActionDefaultFallback().run(dispatcher, tracker, {})
    assert dispatcher.messages == []
    assert _routed(events) == ("payment_plan", "plan_form")
