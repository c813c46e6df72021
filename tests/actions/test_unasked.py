"""An `inform` outside any form: routed by what it holds, never "I did not understand" when it
says what the debtor wants (simulator findings: "en 3 fois par mois" after an off-topic aside,
a postcode before the identity question)."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.fallback import consecutive_fallbacks
from actions.unasked import ActionRouteUnaskedAnswer
from tests.actions.conftest import make_tracker


def _route(text: str, *, verified: bool, language: str = "fr", entities: Any = None) -> list:
    tracker = make_tracker(
        {"identity_verified": verified, "language": language}, text=text, entities=entities
    )
    return ActionRouteUnaskedAnswer().run(CollectingDispatcher(), tracker, {})


def _entity(name: str, value: str) -> list[dict[str, Any]]:
    return [{"entity": name, "value": value}]


@pytest.mark.parametrize("verified", [True, False])
@pytest.mark.parametrize(
    ("text", "language", "entities"),
    [
        ("en 3 fois par mois", "fr", _entity("installments", "3 fois")),
        ("tous les mois", "fr", _entity("frequency", "tous les mois")),
        ("5 euros par mois", "fr", None),  # no entity at all: the wording still says a plan
        ("100 a month", "en", _entity("amount", "100")),  # an amount and a frequency word
        ("50 bucks a month", "en", None),
    ],
)
def test_a_plan_said_out_of_turn_goes_to_the_plan_form(
    text: str, language: str, entities: Any, verified: bool
) -> None:
    events = _route(text, verified=verified, language=language, entities=entities)
    form = "plan_form" if verified else "identity_form"  # never a plan before the identity check
    assert events == [SlotSet("pending_request", "payment_plan"), FollowupAction(form)]


@pytest.mark.parametrize(("text", "language"), [("10001", "en"), ("c'est 75011", "fr")])
def test_an_identity_answer_before_the_question_is_taken_as_the_answer(
    text: str, language: str
) -> None:
    events = _route(text, verified=False, language=language)
    assert events == [
        SlotSet("pending_request", "help"),
        SlotSet("identity_answer", text),
        FollowupAction("identity_form"),
    ]


@pytest.mark.parametrize(
    ("text", "verified"),
    [("10001", True), ("bleu", False), ("le 3", False), ("250", True)],
)
def test_anything_else_is_the_fallback_as_before(text: str, verified: bool) -> None:
    assert _route(text, verified=verified) == [FollowupAction("action_default_fallback")]


def test_the_router_does_not_break_the_count_of_fallbacks_in_a_row() -> None:
    """Two unreadable answers in a row still hand off: the router between them is not an answer."""
    events = [
        {"event": "action", "name": "action_route_unasked_answer"},
        {"event": "action", "name": "action_default_fallback"},
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "bleu"},
        {"event": "action", "name": "action_route_unasked_answer"},
    ]
    assert consecutive_fallbacks(make_tracker(events=events)) == 1
