"""Confirmation before an action with consequences understood on weak evidence
(actions/confirmation.py): what is asked, and what "yes" replays. The rules that route "no" and
unrelated answers are checked by the test stories (bot/tests) and tests/e2e."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker

from actions.confirmation import (
    ActionAskConfirmation,
    ActionConfirmationDeclined,
    ActionConfirmConsequential,
    interrupted_form,
)
from bot.components.evidence import CONFIRM_INTENT, CONSEQUENTIAL
from tests.actions.conftest import responses

METADATA = {"language": "fr", "channel": "sms"}


def _user(
    text: str, intent: str, guarded: str | None = None, entities: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A user event as Rasa stores it; `guarded`: the ConsequenceGuard re-labelled it."""
    ranking = [{"name": intent, "confidence": 0.8}, {"name": "out_of_scope", "confidence": 0.2}]
    if guarded:
        ranking = [
            {"name": CONFIRM_INTENT, "confidence": 0.8},
            {"name": guarded, "confidence": 0.8},
            {"name": "out_of_scope", "confidence": 0.2},
        ]
    parse_data = {
        "text": text,
        "intent": {"name": CONFIRM_INTENT if guarded else intent, "confidence": 0.8},
        "intent_ranking": ranking,
        "entities": entities or [],
    }
    return {
        "event": "user",
        "text": text,
        "parse_data": parse_data,
        "input_channel": "rest",
        "metadata": METADATA,
    }


def _action(name: str) -> dict[str, Any]:
    return {"event": "action", "name": name}


def _tracker(events: list[dict[str, Any]], **slots: Any) -> Tracker:
    latest = next(e for e in reversed(events) if e["event"] == "user")
    message = {**latest["parse_data"], "metadata": latest["metadata"]}
    return Tracker(
        "s", {"language": "fr", **slots}, message, events, False, None, {}, "action_listen"
    )


def _weak_yes_to_the_question() -> list[dict[str, Any]]:
    """A weak opt-out, its question, then a weak "yes" (guarded affirm) to that question."""
    return [
        _action("action_listen"),
        _user("bon ben", "x", guarded="stop_contact"),
        _action("action_ask_confirmation"),
        _action("action_listen"),
        _user("mouais", "x", guarded="affirm"),
    ]


def _kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in events]


@pytest.mark.parametrize("intent", sorted(CONSEQUENTIAL - {"affirm"}))
def test_weak_evidence_asks_that_intents_question_and_does_nothing_else(dispatcher, intent) -> None:
    events = [_action("action_listen"), _user("bof", "x", guarded=intent)]
    result = ActionAskConfirmation().run(dispatcher, _tracker(events), {})
    assert responses(dispatcher) == [f"utter_confirm_{intent}"]
    assert result == [
        {"event": "slot", "timestamp": None, "name": "confirmation_pending", "value": intent}
    ]


def test_a_weak_yes_to_a_plan_offer_asks_whether_the_plan_is_accepted(dispatcher) -> None:
    events = [
        _action("action_evaluate_plan"),
        _action("action_listen"),
        _user("mouais", "x", guarded="affirm"),
    ]
    ActionAskConfirmation().run(dispatcher, _tracker(events, plan_status="within_limits"), {})
    assert responses(dispatcher) == ["utter_confirm_affirm"]


def test_a_weak_yes_elsewhere_has_no_consequence_and_goes_through_at_once(dispatcher) -> None:
    events = [
        _action("utter_iamabot"),
        _action("action_listen"),
        _user("mouais", "x", guarded="affirm"),
    ]
    result = ActionAskConfirmation().run(dispatcher, _tracker(events, plan_status=None), {})
    assert dispatcher.messages == []
    assert _kinds(result) == ["rewind", "action", "user"]
    assert result[-1]["parse_data"]["intent"] == {"name": "affirm", "confidence": 1.0}


def test_a_weak_yes_to_the_question_asks_it_again(dispatcher) -> None:
    events = _weak_yes_to_the_question()
    ActionAskConfirmation().run(
        dispatcher, _tracker(events, confirmation_pending="stop_contact"), {}
    )
    assert responses(dispatcher) == ["utter_confirm_stop_contact"]


def test_yes_replays_the_guarded_message_with_its_intent_entities_and_metadata(dispatcher) -> None:
    date = [{"entity": "date", "value": "vendredi", "start": 0, "end": 8}]
    events = [
        _action("action_listen"),
        _user("vendredi", "x", guarded="promise_to_pay", entities=date),
        _action("action_ask_confirmation"),
        _action("action_listen"),
        _user("oui", "affirm"),
    ]
    result = ActionConfirmConsequential().run(
        dispatcher, _tracker(events, confirmation_pending="promise_to_pay"), {}
    )
    # both user turns undone, then the message again after an action_listen, as if understood
    assert _kinds(result) == ["rewind", "rewind", "action", "user"]
    assert result[2]["name"] == "action_listen"
    replayed = result[3]
    assert replayed["text"] == "vendredi" and replayed["metadata"] == METADATA
    assert replayed["parse_data"]["intent"] == {"name": "promise_to_pay", "confidence": 1.0}
    assert replayed["parse_data"]["entities"] == date
    assert CONFIRM_INTENT not in [r["name"] for r in replayed["parse_data"]["intent_ranking"]]
    assert dispatcher.messages == []


def test_yes_after_a_weak_yes_replays_the_original_message_not_the_weak_yes(dispatcher) -> None:
    events = [
        *_weak_yes_to_the_question(),
        _action("action_ask_confirmation"),
        _action("action_listen"),
        _user("oui", "affirm"),
    ]
    result = ActionConfirmConsequential().run(
        dispatcher, _tracker(events, confirmation_pending="stop_contact"), {}
    )
    assert _kinds(result) == ["rewind", "rewind", "rewind", "action", "user"]
    assert result[-1]["text"] == "bon ben"
    assert result[-1]["parse_data"]["intent"]["name"] == "stop_contact"


def test_yes_without_a_pending_question_changes_nothing(dispatcher) -> None:
    events = [_action("action_listen"), _user("oui", "affirm")]
    result = ActionConfirmConsequential().run(dispatcher, _tracker(events), {})
    assert responses(dispatcher) == ["utter_please_rephrase"]
    assert "user" not in _kinds(result) and "rewind" not in _kinds(result)


def _loop(name: str | None) -> dict[str, Any]:
    return {"event": "active_loop", "name": name}


def _asked_inside(form: str) -> list[dict[str, Any]]:
    """A weak opt-out while `form` asked its question, the form ended, the question, "non"."""
    return [
        _user("je promets de payer", "promise_to_pay"),
        _action(form),
        _loop(form),
        _action("action_listen"),
        _user("ne me dérangez plus", "x", guarded="stop_contact"),
        _action(form),
        _loop(None),
        _action("action_ask_confirmation"),
        _action("action_listen"),
        _user("non", "deny"),
    ]


@pytest.mark.parametrize("form", ["promise_form", "already_paid_form", "dispute_form", "plan_form"])
def test_no_to_a_question_that_interrupted_a_form_asks_the_forms_question_again(
    dispatcher, form: str
) -> None:
    """Simulator finding: a weak opt-out inside the promise form, then "no": the form was gone,
    "next friday" got "I didn't understand" and the next answer a handoff."""
    tracker = _tracker(_asked_inside(form), confirmation_pending="stop_contact")
    assert interrupted_form(tracker) == form
    events = ActionConfirmationDeclined().run(dispatcher, tracker, {})
    assert {"event": "followup", "name": form, "timestamp": None} in events
    [message] = dispatcher.messages
    assert message["response"] == "utter_confirmation_declined" and message["resume"] is True


def test_no_outside_any_form_changes_nothing_and_asks_what_else(dispatcher) -> None:
    events = [
        _action("action_listen"),
        _user("ne me dérangez plus", "x", guarded="stop_contact"),
        _action("action_ask_confirmation"),
        _action("action_listen"),
        _user("non", "deny"),
    ]
    tracker = _tracker(events, confirmation_pending="stop_contact")
    assert interrupted_form(tracker) is None
    result = ActionConfirmationDeclined().run(dispatcher, tracker, {})
    assert not any(e["event"] == "followup" for e in result)
    assert dispatcher.messages[0]["resume"] is False


def test_a_form_that_had_ended_before_the_message_is_not_resumed(dispatcher) -> None:
    """The promise was recorded (the form ended a turn earlier): "non" brings no form back."""
    events = [
        _user("je promets de payer", "promise_to_pay"),
        _action("promise_form"),
        _loop("promise_form"),
        _action("action_listen"),
        _user("vendredi", "inform"),
        _action("promise_form"),
        _loop(None),
        _action("action_record_promise"),
        _action("action_listen"),
        _user("ne me dérangez plus", "x", guarded="stop_contact"),
        _action("action_ask_confirmation"),
        _action("action_listen"),
        _user("non", "deny"),
    ]
    assert interrupted_form(_tracker(events)) is None
