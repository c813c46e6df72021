"""bot/nlg.py, run for real in the Rasa venv: the NLG request Rasa posts to the api keeps the
same format as Rasa's stock callback but carries no events, so its size does not grow with the
conversation (the stock one passed the api's body limit after ~100 turns)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from tests.support.rasa_venv import run_in_rasa_venv

SCRIPT = Path(__file__).with_name("nlg_roundtrip.py")


@cache
def roundtrip() -> dict[str, Any]:
    return run_in_rasa_venv(SCRIPT)


def test_the_body_does_not_grow_with_the_conversation() -> None:
    sizes = roundtrip()["sizes"]
    assert sizes["300"]["stock"] > 256 * 1024  # what made the api answer 413
    assert sizes["300"]["bounded"] < 4 * 1024
    assert abs(sizes["300"]["bounded"] - sizes["1"]["bounded"]) < 64  # only the digits differ


def test_the_body_carries_what_the_api_renders_from() -> None:
    body = roundtrip()["body"]
    assert body["response"] == "utter_greet"
    assert body["arguments"] == {"creditor_name": "Demo"}
    assert "events" not in body["tracker"]
    assert body["tracker"]["slots"]["language"] == "fr"
    assert body["tracker"]["latest_message"]["metadata"]["language"] == "en"
    assert body["channel"] == {"name": "rest"}
