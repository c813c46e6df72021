"""A debtor who switches language (or channel) mid-session is answered in the new one.

Rasa's slots hold the session-start values; the api tags each user message with the current ones.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from relance.nlg.turn_context import turn_language, turn_overrides
from relance.settings import Settings
from tests.actions.conftest import make_tracker


def test_latest_message_metadata_wins_over_the_session_slot() -> None:
    latest = {"text": "hello", "metadata": {"language": "en", "channel": "whatsapp"}}
    assert turn_overrides(latest) == {"language": "en", "channel": "whatsapp"}
    assert turn_language("fr", latest, default="fr") == "en"


def test_invalid_or_missing_metadata_falls_back_to_slot_then_default() -> None:
    assert turn_overrides({"metadata": {"language": "de", "channel": "fax"}}) == {}
    assert turn_overrides({"metadata": "not a mapping"}) == {}
    assert turn_language("en", {"metadata": {"language": "de"}}, default="fr") == "en"
    assert turn_language(None, None, default="fr") == "fr"
    assert turn_language("xx", {}, default="en") == "en"


def test_actions_parse_in_the_turn_language() -> None:
    from actions._common import language

    tracker = make_tracker({"language": "fr"}, text="next friday")
    assert language(tracker) == "fr"
    tracker.latest_message["metadata"] = {"language": "en"}
    assert language(tracker) == "en"


def _nlg(client: TestClient, settings: Settings, tracker: dict[str, Any]) -> str:
    response = client.post(
        f"/nlg?token={settings.nlg_token}",
        json={"response": "utter_identity_verified", "arguments": {}, "tracker": tracker},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["text"])


def test_nlg_endpoint_answers_in_the_latest_message_language(
    client: TestClient, settings: Settings
) -> None:
    slots = {"language": "fr", "channel": "sms"}
    assert _nlg(client, settings, {"slots": slots}) == "Merci, c'est confirmé."
    switched = {"slots": slots, "latest_message": {"metadata": {"language": "en"}}}
    assert _nlg(client, settings, switched) == "Thank you, that's confirmed."
