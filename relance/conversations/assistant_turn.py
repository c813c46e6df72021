"""One debtor turn through Rasa, refused when the action server is down.

Rasa 3.6 does not fail a turn when it cannot reach its action server: it logs "Couldn't connect
to the server", drops the custom action's events and predicts on, so the REST channel answers
200 with an empty or half-done reply (an utterance scheduled before the custom action, without
what the action would have checked or said). Its `/status` does not report the action server
either. So the api asks the action server itself (`GET /health`, `ACTION_SERVER_URL`):

- before the turn: down -> nothing reaches Rasa, its tracker stays clean;
- after the turn: down -> the turn may have run half-way. It is undone in Rasa's tracker (a
  `rewind` event reverts the user message and everything after it, slots included) and its
  replies are dropped, so a half-run turn never reaches the debtor.

Both raise `AssistantUnavailable`: the caller keeps the message `pending_assistant`, answers with
the holding reply, and the replay runs the whole turn once the action server is back.

A kept message may also have reached Rasa although the api never got the answer (read timeout,
Rasa killed after it stored the turn). Before replaying one, the tracker's latest user message is
read: if its metadata carries this message's id, that earlier attempt is rewound first, so the
replay runs the turn once instead of on top of itself (a second "yes" to a plan, say).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

import httpx

from relance.rasa_client import AssistantUnavailable, BotMessage, RasaClient

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_SECONDS = 2.0
REWIND = {"event": "rewind"}  # Rasa's UserUtteranceReverted


class Triggerable(Protocol):
    """What `trigger_turn` needs of Rasa (the RasaClient, or a test double)."""

    def trigger_intent(
        self, sender_id: str, intent: str, entities: dict[str, Any] | None = None
    ) -> list[BotMessage]: ...

    def append_events(self, sender_id: str, events: list[dict[str, Any]]) -> None: ...


class ActionServerProbe:
    """`GET {url}/health` on the rasa-sdk action server: any 2xx means it can run actions."""

    def __init__(self, url: str, timeout: float = HEALTH_TIMEOUT_SECONDS) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout

    def is_up(self) -> bool:
        try:
            return _client().get(self.url + "/health", timeout=self._timeout).is_success
        except httpx.HTTPError:
            return False


_shared: list[httpx.Client] = []
_shared_lock = threading.Lock()


def _client() -> httpx.Client:
    """One pooled client per process: the probe runs twice per debtor turn (the hot path), and a
    fresh client per call opened a new TCP connection each time. Created on first use."""
    with _shared_lock:
        if not _shared:
            _shared.append(httpx.Client())
        return _shared[0]


def probe_from_settings() -> ActionServerProbe | None:
    """None when `ACTION_SERVER_URL` is not set (tests with a fake Rasa, no action server)."""
    from relance.settings import get_settings

    url = get_settings().action_server_url
    return ActionServerProbe(url) if url else None


def undo_earlier_attempt(rasa: RasaClient, sender_id: str, message_id: str | None) -> bool:
    """Rewind the tracker's latest user turn if it is this message's (see the module doc)."""
    if not message_id:
        return False
    try:
        last = rasa.last_user_metadata(sender_id)
        if last is None or last.get("message_id") != message_id:
            return False
        log.warning(
            "message %s already reached Rasa for %s: rewinding before replay", message_id, sender_id
        )
        rasa.append_events(sender_id, [REWIND])
    except httpx.HTTPError as exc:  # 4xx from Rasa's API: keep the message, retry later
        raise AssistantUnavailable(f"tracker of {sender_id}: {exc}") from exc
    return True


def send_turn(
    rasa: RasaClient,
    sender_id: str,
    text: str,
    metadata: dict[str, Any],
    probe: ActionServerProbe | None,
    *,
    replay: bool = False,
) -> list[BotMessage]:
    """`rasa.send_message`, but AssistantUnavailable instead of a turn run without its actions.

    `replay`: the message was kept earlier and may already be in Rasa's tracker.
    """
    _check_before_turn(probe)
    if replay:
        undo_earlier_attempt(rasa, sender_id, metadata.get("message_id"))
    messages = rasa.send_message(sender_id, text, metadata)
    _check_after_turn(rasa, sender_id, probe)
    return messages


def trigger_turn(
    rasa: Triggerable,
    sender_id: str,
    intent: str,
    entities: dict[str, Any] | None,
    probe: ActionServerProbe | None,
) -> list[BotMessage]:
    """`rasa.trigger_intent` (outbound reminder, hand-back) with the same guard as `send_turn`:
    the api-side callers then fall back (a locally rendered reminder, a deferred resume) instead
    of sending what a turn without its actions said."""
    _check_before_turn(probe)
    messages = rasa.trigger_intent(sender_id, intent, entities)
    _check_after_turn(rasa, sender_id, probe)
    return messages


def _check_before_turn(probe: ActionServerProbe | None) -> None:
    """Action server down: nothing reaches Rasa, its tracker stays clean."""
    if probe is not None and not probe.is_up():
        raise AssistantUnavailable(f"action server {probe.url} unreachable")


def _check_after_turn(rasa: Triggerable, sender_id: str, probe: ActionServerProbe | None) -> None:
    """Action server gone during the turn: rewind the half-run turn and refuse its replies."""
    if probe is None or probe.is_up():
        return
    log.warning(
        "action server %s went down during a turn of %s: rewinding it", probe.url, sender_id
    )
    try:
        rasa.append_events(sender_id, [REWIND])
    except (AssistantUnavailable, httpx.HTTPError) as exc:
        # The half turn stays in Rasa's tracker; the replay still answers the message once.
        log.error("could not rewind the half-run turn of %s: %s", sender_id, exc)
    raise AssistantUnavailable(f"action server {probe.url} went down during the turn")
