"""HTTP client for the Rasa server(s) (own venv, reached over HTTP only).

Three doors: the REST channel for debtor messages, `trigger_intent` for outbound priming, and
`tracker/events` for handoff pause/resume and collector messages. Any transport failure raises
`AssistantUnavailable` so callers can queue the message and answer with a holding reply.

Several Rasa instances (`RASA_URL` as a comma-separated list) share one SQL tracker store and one
Redis lock store, so any of them can serve any conversation. Each conversation still goes to one
preferred instance, chosen by rendezvous hashing of its sender id (stable, and adding an instance
moves only the conversations that now prefer it). When that instance cannot be reached the call
goes to the next one in the sender's order. Only failures where the request certainly did not
reach a working Rasa fail over (connection refused or timed out while connecting, "no model
loaded", 502/503 from a proxy): after a read timeout or a 500 the turn may have been processed,
and running it again elsewhere could answer the debtor twice.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import httpx

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 3.0  # a dead instance must not cost a whole read timeout per turn
DOWN_COOLDOWN_SECONDS = 10.0  # how long an unreachable instance is tried last
# Rasa answers 409 "No agent loaded" while its model is loading; a proxy answers 502/503 when no
# healthy upstream took the request. In all three cases the turn was not processed.
NOT_DELIVERED_STATUSES = frozenset({409, 502, 503})
_NOT_DELIVERED_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class AssistantUnavailable(Exception):
    """Rasa did not answer (down, slow, 5xx). The message must be kept and replayed."""


class _NotDelivered(Exception):
    """This instance did not take the request: another instance may."""


@dataclass
class BotMessage:
    text: str | None = None
    custom: dict[str, Any] = field(default_factory=dict)


def parse_urls(value: str | Sequence[str]) -> list[str]:
    """`RASA_URL` as one URL or a comma-separated list; order and duplicates do not matter."""
    items = value.split(",") if isinstance(value, str) else list(value)
    urls = list(dict.fromkeys(u.strip().rstrip("/") for u in items if u.strip()))
    if not urls:
        raise ValueError("RASA_URL is empty: give at least one Rasa server URL")
    return urls


def preference(sender_id: str, urls: Sequence[str]) -> list[str]:
    """The instances in the order this sender tries them (rendezvous / highest-random-weight)."""

    def weight(url: str) -> bytes:
        return hashlib.blake2b(f"{url}\n{sender_id}".encode(), digest_size=8).digest()

    return sorted(urls, key=lambda url: (weight(url), url), reverse=True)


class InstanceHealth:
    """Which instances failed recently, shared by every client of the process (thread-safe)."""

    def __init__(
        self, cooldown: float = DOWN_COOLDOWN_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._cooldown = cooldown
        self._clock = clock
        self._down_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def mark_down(self, url: str) -> None:
        with self._lock:
            self._down_until[url] = self._clock() + self._cooldown

    def mark_up(self, url: str) -> None:
        with self._lock:
            self._down_until.pop(url, None)

    def is_down(self, url: str) -> bool:
        with self._lock:
            return self._down_until.get(url, 0.0) > self._clock()

    def order(self, urls: Sequence[str]) -> list[str]:
        """Keep the given order, moving instances that failed recently to the end (still tried:
        a cooldown must never refuse a turn that a recovered instance could serve)."""
        return sorted(urls, key=self.is_down)  # stable sort


_PROCESS_HEALTH = InstanceHealth()


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process. A client is created for every debtor turn, and
    building its default context loads the whole CA bundle: about 40 ms of CPU (over 100 ms on a
    loaded machine), as much as the rest of the api's work for a turn (bench/turn_latency)."""
    return httpx.create_ssl_context()


def _conversation_path(sender_id: str) -> str:
    # Rasa expects the literal sender id in the path; keep '+' as is (E.164 ids).
    return "/conversations/" + quote(sender_id, safe="+")


class RasaClient:
    def __init__(
        self,
        base_url: str | Sequence[str],
        auth_token: str,
        timeout: float = 10.0,
        *,
        health: InstanceHealth | None = None,
    ) -> None:
        self.urls = parse_urls(base_url)
        self._token = auth_token
        self._health = health or _PROCESS_HEALTH
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_SECONDS)),
            verify=_tls_context(),
        )

    def close(self) -> None:
        self._http.close()

    def instances_for(self, sender_id: str) -> list[str]:
        """Where a turn of `sender_id` goes: its preferred instance first, recent failures last."""
        return self._health.order(preference(sender_id, self.urls))

    def _post(self, sender_id: str, path: str, payload: Any, *, api: bool = False) -> Any:
        return self._call("POST", sender_id, path, payload, api=api)

    def _call(
        self,
        method: str,
        sender_id: str,
        path: str,
        payload: Any = None,
        *,
        api: bool = False,
        params: dict[str, str] | None = None,
    ) -> Any:
        params = {**(params or {}), **({"token": self._token} if api else {})} or None
        failures: list[str] = []
        for url in self.instances_for(sender_id):
            try:
                response = self._once(method, url + path, payload, params)
            except _NotDelivered as exc:
                self._health.mark_down(url)
                failures.append(f"{url}: {exc}")
                log.warning("rasa %s did not take the turn of %s (%s)", url, sender_id, exc)
                continue
            self._health.mark_up(url)
            if failures:
                log.warning("turn of %s served by %s after: %s", sender_id, url, failures)
            return response.json()
        raise AssistantUnavailable("; ".join(failures))

    def _once(
        self, method: str, url: str, payload: Any, params: dict[str, str] | None
    ) -> httpx.Response:
        try:
            response = self._http.request(method, url, json=payload, params=params)
        except _NOT_DELIVERED_ERRORS as exc:
            raise _NotDelivered(f"{type(exc).__name__}: {exc}") from exc
        except httpx.HTTPError as exc:  # read timeout, reset...: the turn may have run
            raise AssistantUnavailable(f"{url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code in NOT_DELIVERED_STATUSES:
            raise _NotDelivered(f"answered {response.status_code}")
        if response.status_code >= 500:
            raise AssistantUnavailable(f"{url} answered {response.status_code}")
        response.raise_for_status()
        return response

    def send_message(self, sender_id: str, text: str, metadata: dict[str, Any]) -> list[BotMessage]:
        """Debtor text through the REST channel; returns the bot's messages for this turn."""
        raw = self._post(
            sender_id,
            "/webhooks/rest/webhook",
            {"sender": sender_id, "message": text, "metadata": metadata},
        )
        return [_to_bot_message(m) for m in raw or []]

    def trigger_intent(
        self, sender_id: str, intent: str, entities: dict[str, Any] | None = None
    ) -> list[BotMessage]:
        """Inject an external intent (outbound reminder, resume after handoff) and collect replies."""
        raw = self._post(
            sender_id,
            # No output_channel: Rasa then collects the replies and returns them to us.
            _conversation_path(sender_id) + "/trigger_intent",
            {"name": intent, "entities": entities or {}},
            api=True,
        )
        return [_to_bot_message(m) for m in (raw or {}).get("messages", [])]

    def append_events(self, sender_id: str, events: list[dict[str, Any]]) -> None:
        self._post(sender_id, _conversation_path(sender_id) + "/tracker/events", events, api=True)

    def last_user_metadata(self, sender_id: str) -> dict[str, Any] | None:
        """The metadata of the tracker's latest user message (None: no user message yet)."""
        tracker = self._call(
            "GET",
            sender_id,
            _conversation_path(sender_id) + "/tracker",
            api=True,
            params={"include_events": "AFTER_RESTART"},
        )
        for event in reversed((tracker or {}).get("events") or []):
            if event.get("event") == "user":
                return event.get("metadata") or {}
        return None

    def instances_up(self) -> dict[str, bool]:
        """Each instance's `/status` (model loaded, token accepted)."""
        return {url: self._status_ok(url) for url in self.urls}

    def is_up(self) -> bool:
        """At least one instance can take turns."""
        return any(self._status_ok(url) for url in self.urls)

    def _status_ok(self, url: str) -> bool:
        try:
            return self._http.get(url + "/status", params={"token": self._token}).is_success
        except httpx.HTTPError:
            return False


def _to_bot_message(raw: dict[str, Any]) -> BotMessage:
    return BotMessage(text=raw.get("text"), custom=raw.get("custom") or {})


def client_from_settings() -> RasaClient:
    from relance.settings import get_settings

    settings = get_settings()
    return RasaClient(settings.rasa_url, settings.rasa_auth_token, settings.rasa_timeout_seconds)
