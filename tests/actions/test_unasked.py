"""An `inform` outside any form: routed by what it holds, never "I did not understand" when it
says what the debtor wants (simulator findings: "en 3 fois par mois" after an off-topic aside,
a postcode before the identity question)."""

from __future__ import annotations

from typing import Any

import pytest
from freezegun import freeze_time
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.fallback import consecutive_fallbacks
from actions.unasked import ActionRouteUnaskedAnswer
from relance.db.models import Task
from relance.ledger.reconciliation import open_reconciliation_task
from tests.actions.conftest import make_tracker, responses, slots_for


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


# After a payment report: "par virement", "le 2/12", "VIR-88421" add to it (simulator finding:
# the first was "I did not understand", the second handed the debtor to a person).
REPORTED = [
    {"event": "user", "text": "1002"},
    {"event": "action", "name": "already_paid_form"},
    {"event": "action", "name": "action_record_already_paid"},
    {"event": "action", "name": "action_listen"},
]


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("par virement", {"method": "transfer"}),
        ("le 2/12", {"claimed_date": "2026-12-02"}),
        ("VIR-88421", {"reference": "VIR-88421"}),
        ("by cheque", {"method": "cheque"}),
    ],
)
@freeze_time("2026-12-06 11:00:00")
def test_a_payment_detail_after_the_report_is_added_to_it(
    db: Session, debtor_setup: Any, text: str, detail: dict[str, str]
) -> None:
    owner, conv = debtor_setup
    open_reconciliation_task(db, debtor_id=owner.id, reference="1002", source="bot")
    events = [*REPORTED, {"event": "user", "text": text}]
    tracker = make_tracker(slots_for(owner, conv), text=text, events=events)
    dispatcher = CollectingDispatcher()
    # the turn ends on the acknowledgement (simulator: the fallback followed it)
    assert ActionRouteUnaskedAnswer().run(dispatcher, tracker, {}) == [
        FollowupAction("action_listen")
    ]
    assert responses(dispatcher) == ["utter_payment_detail_noted"]
    task = db.scalars(select(Task).where(Task.debtor_id == owner.id)).one()
    added = task.details["claims"][-1]
    assert {key: added[key] for key in detail} == detail
    assert len(task.details["claims"]) == 2  # the same task, not a second one


@pytest.mark.parametrize(
    "before",
    [
        [],  # no report in this conversation
        [
            *REPORTED,
            {"event": "user", "text": "combien"},
            {"event": "action", "name": "action_give_balance"},
        ],
    ],
)
def test_a_payment_detail_with_no_report_just_before_is_not_taken_for_one(
    db: Session, debtor_setup: Any, before: list[dict[str, Any]]
) -> None:
    owner, conv = debtor_setup
    events = [*before, {"event": "user", "text": "par virement"}]
    tracker = make_tracker(slots_for(owner, conv), text="par virement", events=events)
    dispatcher = CollectingDispatcher()
    events_out = ActionRouteUnaskedAnswer().run(dispatcher, tracker, {})
    assert events_out == [FollowupAction("action_default_fallback")]
    assert db.scalars(select(Task).where(Task.debtor_id == owner.id)).first() is None


@freeze_time("2026-12-07 10:00:00")
@pytest.mark.parametrize(
    ("text", "language", "said", "promised"),
    [
        ("fin du mois alors", "fr", "fin du", "2026-12-31"),
        ("vendredi", "fr", "vendredi", "2026-12-11"),
        ("next friday then", "en", "next friday", "2026-12-11"),
    ],
)
def test_a_date_said_out_of_turn_is_when_the_debtor_will_pay(
    text: str, language: str, said: str, promised: str
) -> None:
    """Simulator: "fin du mois alors" after "ok je vais payer" got "I didn't understand", then a
    handoff. It starts the promise form with that date (the form asks how much)."""
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        {"identity_verified": True, "language": language},
        text=text,
        entities=_entity("date", said),
    )
    events = ActionRouteUnaskedAnswer().run(dispatcher, tracker, {})
    assert events == [
        SlotSet("pending_request", "promise"),
        SlotSet("promise_date", promised),
        FollowupAction("promise_form"),
    ]
    assert dispatcher.messages == []


@freeze_time("2026-12-07 10:00:00")
@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("le 31 février", "utter_invalid_answer"),  # no such date
        ("le 3 décembre 2026", "utter_invalid_answer"),  # past
        ("le 1er juin 2027", "utter_promise_too_late"),  # beyond the policy's limit
    ],
)
def test_a_date_the_policy_cannot_take_is_said_so_and_asked_again(text: str, reply: str) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker({"identity_verified": True}, text=text, entities=_entity("date", "le"))
    events = ActionRouteUnaskedAnswer().run(dispatcher, tracker, {})
    assert responses(dispatcher) == [reply]
    assert events == [
        SlotSet("pending_request", "promise"),
        SlotSet("promise_date", None),
        FollowupAction("promise_form"),
    ]


def test_before_the_identity_check_a_date_is_not_a_promise() -> None:
    events = _route("vendredi", verified=False, entities=_entity("date", "vendredi"))
    assert FollowupAction("promise_form") not in events


@pytest.mark.parametrize("verified", [True, False])
@pytest.mark.parametrize(
    ("text", "language"),
    [("my balance", "en"), ("mon solde", "fr"), ("le solde svp", "fr"), ("amount due?", "en")],
)
def test_a_few_words_naming_the_balance_are_the_balance_question(
    text: str, language: str, verified: bool
) -> None:
    """DIET labels "my balance" and "mon solde" `inform` (its inform examples hold "tout le
    solde", an amount answer): the question is answered, behind the identity check, not "I did
    not understand"."""
    events = _route(text, verified=verified, language=language)
    then = "action_give_balance" if verified else "identity_form"
    assert events == [SlotSet("pending_request", "balance"), FollowupAction(then)]


@pytest.mark.parametrize(
    "text", ["i paid the balance last month by transfer", "mon nom est Dupont", "oui"]
)
def test_longer_or_other_messages_are_not_taken_for_the_balance_question(text: str) -> None:
    events = _route(text, verified=True)
    assert SlotSet("pending_request", "balance") not in events
