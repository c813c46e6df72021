"""HTTP client for the Rasa server (own venv, reached over HTTP only).

Three doors: the REST channel for debtor messages, `trigger_intent` for outbound priming, and
`tracker/events` for handoff pause/resume and collector messages. Any transport failure raises
`AssistantUnavailable` so callers can queue the message and answer with a holding reply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx


class AssistantUnavailable(Exception):
    """Rasa did not answer (down, slow, 5xx). The message must be kept and replayed."""


@dataclass
class BotMessage:
    text: str | None = None
    custom: dict[str, Any] = field(default_factory=dict)


def _conversation_path(sender_id: str) -> str:
    # Rasa expects the literal sender id in the path; keep '+' as is (E.164 ids).
    return "/conversations/" + quote(sender_id, safe="+")


class RasaClient:
    def __init__(self, base_url: str, auth_token: str, timeout: float = 10.0) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = auth_token
        self._http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, payload: Any, *, api: bool = False) -> Any:
        params = {"token": self._token} if api else None
        try:
            response = self._http.post(self._base_url + path, json=payload, params=params)
        except httpx.HTTPError as exc:
            raise AssistantUnavailable(str(exc)) from exc
        if response.status_code >= 500:
            raise AssistantUnavailable(f"rasa answered {response.status_code}")
        response.raise_for_status()
        return response.json()

    def send_message(self, sender_id: str, text: str, metadata: dict[str, Any]) -> list[BotMessage]:
        """Debtor text through the REST channel; returns the bot's messages for this turn."""
        raw = self._post(
            "/webhooks/rest/webhook", {"sender": sender_id, "message": text, "metadata": metadata}
        )
        return [_to_bot_message(m) for m in raw or []]

    def trigger_intent(
        self, sender_id: str, intent: str, entities: dict[str, Any] | None = None
    ) -> list[BotMessage]:
        """Inject an external intent (outbound reminder, resume after handoff) and collect replies."""
        raw = self._post(
            # No output_channel: Rasa then collects the replies and returns them to us.
            _conversation_path(sender_id) + "/trigger_intent",
            {"name": intent, "entities": entities or {}},
            api=True,
        )
        return [_to_bot_message(m) for m in (raw or {}).get("messages", [])]

    def append_events(self, sender_id: str, events: list[dict[str, Any]]) -> None:
        self._post(_conversation_path(sender_id) + "/tracker/events", events, api=True)

    def is_up(self) -> bool:
        try:
            return self._http.get(
                self._base_url + "/status", params={"token": self._token}
            ).is_success
        except httpx.HTTPError:
            return False


def _to_bot_message(raw: dict[str, Any]) -> BotMessage:
    return BotMessage(text=raw.get("text"), custom=raw.get("custom") or {})


def client_from_settings() -> RasaClient:
    from relance.settings import get_settings

    settings = get_settings()
    return RasaClient(settings.rasa_url, settings.rasa_auth_token, settings.rasa_timeout_seconds)
