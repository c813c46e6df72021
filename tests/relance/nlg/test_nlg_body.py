"""/nlg answers whatever the length of the conversation, and reads nothing before the token.

Rasa 3.6's stock NLG callback posts every event of the session with each response it asks for;
past about a hundred turns that passed the api's 256 KiB body limit, /nlg answered 413, and the
debtor got an empty reply on every turn after that.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from relance.settings import Settings

GENERAL_LIMIT = 256 * 1024


def _long_conversation_body(turns: int) -> dict[str, Any]:
    """What the stock callback sends after `turns` user turns (about 2.5 KiB of events each)."""
    events: list[dict[str, Any]] = []
    for n in range(turns):
        events.append(
            {
                "event": "user",
                "text": f"message {n}",
                "parse_data": {
                    "intent": {"name": "greet", "confidence": 0.99},
                    "intent_ranking": [
                        {"name": f"intent_{i}", "confidence": 0.01} for i in range(10)
                    ],
                    "entities": [],
                    "metadata": {"language": "fr", "channel": "sms", "message_id": str(n)},
                },
            }
        )
        events.extend(
            {"event": "action", "name": "utter_greet", "policy": "RulePolicy", "confidence": 1.0}
            for _ in range(3)
        )
        events.append({"event": "bot", "text": "Bonjour ! " * 40, "metadata": {"n": n}})
    return {
        "response": "utter_identity_verified",
        "arguments": {},
        "tracker": {
            "sender_id": "debtor-1",
            "slots": {"language": "fr", "channel": "sms"},
            "latest_message": {"text": "bonjour", "metadata": {"language": "en"}},
            "events": events,
        },
        "channel": {"name": "rest"},
    }


def test_a_long_conversation_is_answered(client: TestClient, settings: Settings) -> None:
    body = json.dumps(_long_conversation_body(1000)).encode()
    assert len(body) > 4 * GENERAL_LIMIT
    response = client.post(
        f"/nlg?token={settings.nlg_token}",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["text"] == "Thank you, that's confirmed."  # latest message's language


def test_other_routes_keep_the_general_limit(client: TestClient) -> None:
    response = client.post(
        "/twilio/sms",
        content=b"Body=" + b"x" * (GENERAL_LIMIT + 1),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413


def _raw_post(app: FastAPI, query: str, declared: int) -> tuple[int, int]:
    """POST /nlg straight to the ASGI app; returns (status, how many body chunks were read)."""
    reads = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"{" * 65536, "more_body": reads < 200}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/nlg",
        "raw_path": b"/nlg",
        "query_string": query.encode(),
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(declared).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], reads


def test_an_unauthenticated_large_body_is_refused_unread(client: TestClient) -> None:
    app = client.app
    assert _raw_post(app, "token=wrong", 10 * 1024 * 1024) == (401, 0)
    assert _raw_post(app, "", 10 * 1024 * 1024) == (401, 0)


def test_even_an_authenticated_body_has_a_ceiling(client: TestClient, settings: Settings) -> None:
    from relance.nlg.endpoints import NLG_MAX_BODY_BYTES

    status, reads = _raw_post(client.app, f"token={settings.nlg_token}", NLG_MAX_BODY_BYTES + 1)
    assert (status, reads) == (413, 0)


def test_a_malformed_authenticated_body_is_a_422(client: TestClient, settings: Settings) -> None:
    for content in (b"{not json", b'{"response": ""}', b"[]", b""):
        response = client.post(
            f"/nlg?token={settings.nlg_token}",
            content=content,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422, (content, response.status_code, response.text)
