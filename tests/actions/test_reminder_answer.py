"""A bare "yes" or "no" right after the reminder (actions/reminders.py ActionAnswerReminder)."""

from __future__ import annotations

from typing import Any

from actions.reminders import ActionAnswerReminder
from tests.actions.conftest import make_tracker, responses


def _reminder(discreet: bool) -> dict[str, Any]:
    entities = [{"entity": "stage", "value": "friendly"}]
    if discreet:
        entities.append({"entity": "discreet", "value": True})
    return {
        "event": "user",
        "text": "EXTERNAL: EXTERNAL_reminder",
        "parse_data": {"intent": {"name": "EXTERNAL_reminder"}, "entities": entities},
    }


def _answer(text: str, intent: str) -> dict[str, Any]:
    return {
        "event": "user",
        "text": text,
        "parse_data": {"intent": {"name": intent, "confidence": 0.99}, "entities": []},
        "metadata": {"channel": "sms"},
    }


def test_yes_is_thanked_and_pointed_to_the_reminders_link(dispatcher) -> None:
    tracker = make_tracker(
        text="oui", intent="affirm", events=[_reminder(False), _answer("oui", "affirm")]
    )
    assert ActionAnswerReminder().run(dispatcher, tracker, {}) == []
    assert responses(dispatcher) == ["utter_reminder_affirmed"]


def test_yes_to_a_discreet_reminder_says_nothing_about_a_debt(dispatcher) -> None:
    tracker = make_tracker(
        text="yes", intent="affirm", events=[_reminder(True), _answer("yes", "affirm")]
    )
    ActionAnswerReminder().run(dispatcher, tracker, {})
    assert responses(dispatcher) == ["utter_how_can_i_help"]


def test_no_is_replayed_as_cannot_pay_today(dispatcher) -> None:
    tracker = make_tracker(
        text="non", intent="deny", events=[_reminder(False), _answer("non", "deny")]
    )
    events = ActionAnswerReminder().run(dispatcher, tracker, {})
    assert dispatcher.messages == []
    assert [e["event"] for e in events] == ["rewind", "action", "user"]
    replayed = events[-1]
    assert replayed["text"] == "non"
    assert replayed["parse_data"]["intent"] == {"name": "cannot_pay", "confidence": 1.0}
    assert replayed["metadata"] == {"channel": "sms"}
