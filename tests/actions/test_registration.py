"""The action server registers every action of the package, and only concrete ones: a shared
base class (FormThatAsksBeforeLeaving) once made `python -m rasa_sdk --actions actions` exit at
start-up ("An action must implement a name"), which only the end-to-end stack showed."""

from __future__ import annotations

from rasa_sdk.executor import ActionExecutor


def test_the_action_server_registers_the_package() -> None:
    executor = ActionExecutor()
    executor.register_package("actions")
    names = set(executor.actions)
    assert {
        "validate_promise_form",
        "validate_already_paid_form",
        "validate_dispute_form",
        "validate_plan_form",
        "action_ask_confirmation",
        "action_out_of_scope",
    } <= names
