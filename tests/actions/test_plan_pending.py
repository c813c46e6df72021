"""An aside between a plan proposal and the debtor's answer (simulator finding): the off-topic
reply, the balance or the invoice details, then the proposal again, so that the next "oui" is
taken by the same rules as right after the proposal. Never out of the blue."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk.events import FollowupAction

from actions.balance import ActionGiveBalance, ActionGiveDebtDetails
from actions.off_topic import ActionOutOfScope
from actions.plan_pending import awaiting_plan_answer
from relance.nlg.renderer import render
from relance.nlg.templates_store import bundled_templates
from tests.actions.conftest import make_tracker, slots_for

PROPOSAL = {"installments": 6, "frequency": "monthly"}


def _action(name: str) -> dict[str, Any]:
    return {"event": "action", "name": name}


def _user(text: str, intent: str = "out_of_scope") -> dict[str, Any]:
    return {"event": "user", "text": text, "parse_data": {"intent": {"name": intent}}}


AFTER_PROPOSAL = [
    _user("5 euros par mois", "inform"),
    _action("action_evaluate_plan"),
    _action("action_listen"),
    _user("il fait beau chez vous ?"),
    _action("action_extract_slots"),
]


def _tracker(owner, conv, events, *, status: str = "counter_offer", **kwargs: Any):
    slots = slots_for(owner, conv) | {"plan_status": status, "plan_proposal": PROPOSAL}
    return make_tracker(slots, events=events, intent="out_of_scope", **kwargs)


@pytest.mark.parametrize("status", ["counter_offer", "within_limits"])
def test_an_aside_right_after_the_proposal_asks_it_again(
    dispatcher, debtor_setup, status: str
) -> None:
    owner, conv = debtor_setup
    for action in (ActionOutOfScope(), ActionGiveBalance(), ActionGiveDebtDetails()):
        tracker = _tracker(owner, conv, AFTER_PROPOSAL, status=status)
        assert action.run(dispatcher, tracker, {}) == [FollowupAction("action_evaluate_plan")]


def test_the_balance_asks_no_question_of_its_own_before_the_proposal(
    dispatcher, debtor_setup
) -> None:
    owner, conv = debtor_setup
    ActionGiveBalance().run(dispatcher, _tracker(owner, conv, AFTER_PROPOSAL), {})
    [message] = dispatcher.messages
    assert message["response"] == "utter_balance" and message["form_active"] is True


@pytest.mark.parametrize(
    ("events", "status", "loop"),
    [
        # the debtor moved on: another answer of the bot's came after the proposal
        (
            [
                *AFTER_PROPOSAL[:3],
                _user("je conteste"),
                _action("utter_ask_dispute_reason"),
                _action("action_listen"),
                _user("il fait beau ?"),
            ],
            "counter_offer",
            None,
        ),
        # answered already: the plan was made or declined
        (AFTER_PROPOSAL, "created", None),
        (AFTER_PROPOSAL, "declined", None),
        (AFTER_PROPOSAL, "needs_approval", None),
        # a form asks its own question
        (AFTER_PROPOSAL, "counter_offer", "promise_form"),
        # no proposal ever
        (
            [
                _user("bonjour", "greet"),
                _action("utter_greet"),
                _action("action_listen"),
                _user("il fait beau ?"),
            ],
            "counter_offer",
            None,
        ),
    ],
    ids=["moved-on", "created", "declined", "needs-approval", "inside-a-form", "never-proposed"],
)
def test_no_proposal_comes_back_out_of_the_blue(
    dispatcher, debtor_setup, events, status: str, loop: str | None
) -> None:
    owner, conv = debtor_setup
    tracker = _tracker(owner, conv, events, status=status, active_loop=loop)
    assert not awaiting_plan_answer(tracker)
    assert ActionOutOfScope().run(dispatcher, tracker, {}) == []
    assert ActionGiveBalance().run(dispatcher, tracker, {}) == []


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_off_topic_reply_asks_no_rephrase_before_the_bots_own_question(
    dispatcher, debtor_setup, language: str
) -> None:
    """Seen in the simulator: "... Pouvez-vous reformuler ?" then the proposal again: two
    questions, the first one wrong. Before a proposal (or a form's question) the reply only says
    what the assistant can help with."""
    owner, conv = debtor_setup
    tracker = _tracker(owner, conv, AFTER_PROPOSAL)
    ActionOutOfScope().run(dispatcher, tracker, {})
    [message] = dispatcher.messages
    assert message["question_follows"] is True

    def said(**variables: Any) -> str:
        context = {"creditor_name": "x", "creditor_phone": "x", **variables}
        return render(
            bundled_templates(), "utter_out_of_scope", language=language, variables=context
        )

    rephrase = "reformuler" if language == "fr" else "rephrase"
    assert rephrase not in said(question_follows=True)
    assert rephrase not in said(requested_slot="promise_date")  # inside a form
    assert rephrase in said(question_follows=False, requested_slot=None)
