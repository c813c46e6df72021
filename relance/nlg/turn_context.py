"""Which language and channel a turn is answered in.

Rasa's `language` and `channel` slots are filled once, from the session-start metadata. The api
tags every user message with the conversation's current values (it follows a debtor who starts
writing in the other language, or who answers an SMS by WhatsApp), so the latest user message's
metadata wins over the slots; the slots remain the fallback for turns without a user message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relance.db.models.enums import Channel
from relance.languages import LANGUAGES

CHANNELS = tuple(channel.value for channel in Channel)


def turn_overrides(latest_message: Mapping[str, Any] | None) -> dict[str, str]:
    """The valid `language` / `channel` values the api put on the latest user message."""
    metadata = (latest_message or {}).get("metadata") or {}
    if not isinstance(metadata, Mapping):
        return {}
    found: dict[str, str] = {}
    if metadata.get("language") in LANGUAGES:
        found["language"] = str(metadata["language"])
    if metadata.get("channel") in CHANNELS:
        found["channel"] = str(metadata["channel"])
    return found


def turn_language(slot_value: Any, latest_message: Mapping[str, Any] | None, default: str) -> str:
    """The language of this turn: the latest user message's, else the slot's, else `default`."""
    language = turn_overrides(latest_message).get("language", slot_value)
    return language if language in LANGUAGES else default
