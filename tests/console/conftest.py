"""Console fixtures: a fake outbound gateway, a fake Rasa, signed-in clients."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from relance.conversations import ports
from relance.conversations.ports import DeliveryError
from relance.db.models import Contact, Conversation, Message, User
from relance.rasa_client import AssistantUnavailable, BotMessage
from tests.factories import PASSWORD, make_user

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
LOGIN_CSRF_RE = re.compile(r'name="login_csrf" value="([^"]+)"')


@dataclass
class FakeGateway:
    """Records sends and stores them as outbound messages, like the Twilio gateway does."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    fail_with: DeliveryError | None = None

    def send_text(
        self,
        session: Session,
        *,
        conversation: Conversation,
        contact: Contact,
        text: str,
        author: str,
        first_contact_template: bool = False,
    ) -> Message:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(
            {
                "conversation_id": conversation.id,
                "address": contact.address,
                "channel": contact.channel,
                "text": text,
                "author": author,
            }
        )
        message = Message(
            conversation_id=conversation.id,
            direction="outbound",
            channel=contact.channel,
            author=author,
            body=text,
            address=contact.address,
            status="queued",
        )
        session.add(message)
        session.flush()
        return message

    def place_call(self, session: Session, **kw: Any) -> Message:  # pragma: no cover
        raise NotImplementedError


@dataclass
class FakeRasa:
    """Stands in for the Rasa HTTP client; `down=True` behaves like an unreachable server."""

    down: bool = False
    replies: list[str] = field(default_factory=list)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)

    def append_events(self, sender_id: str, events: list[dict[str, Any]]) -> None:
        if self.down:
            raise AssistantUnavailable("connection refused")
        self.calls.append(("events", sender_id, events))

    def trigger_intent(self, sender_id: str, intent: str, entities: Any = None) -> list[BotMessage]:
        if self.down:
            raise AssistantUnavailable("connection refused")
        self.calls.append(("intent", sender_id, intent))
        return [BotMessage(text=t) for t in self.replies]

    def close(self) -> None:
        pass


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> FakeGateway:
    fake = FakeGateway()
    monkeypatch.setattr(ports, "_gateway", fake)
    return fake


@pytest.fixture
def rasa(monkeypatch: pytest.MonkeyPatch) -> FakeRasa:
    fake = FakeRasa()
    monkeypatch.setattr("console.casework.client_from_settings", lambda: fake)
    return fake


def login(client: TestClient, email: str, password: str = PASSWORD, follow: bool = False) -> Any:
    page = client.get("/console/login")
    token = LOGIN_CSRF_RE.search(page.text).group(1)  # type: ignore[union-attr]
    return client.post(
        "/console/login",
        data={"email": email, "password": password, "login_csrf": token},
        follow_redirects=follow,
    )


def csrf_of(client: TestClient, path: str = "/console/") -> str:
    page = client.get(path)
    match = CSRF_RE.search(page.text)
    assert match, f"no CSRF token on {path}: {page.status_code}"
    return match.group(1)


@pytest.fixture(autouse=True)
def stage_templates(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Bundled wording plus a stub for any response the seed policy names but the bundled file
    lacks yet, so policy saves are judged on the policy, not on another team's progress."""
    from relance.nlg import templates_store
    from relance.policy.service import seed_document

    templates = dict(templates_store.bundled_templates())
    for track in seed_document()["tracks"]:
        for stage in track["stages"]:
            templates.setdefault(
                stage["template"],
                [{"fr": f"Rappel {stage['key']}", "en": f"Reminder {stage['key']}"}],
            )
    monkeypatch.setattr(templates_store, "bundled_templates", lambda: templates)
    return templates


@pytest.fixture
def collector(db: Session) -> User:
    return make_user(db, "collector")


@pytest.fixture
def admin(db: Session) -> User:
    return make_user(db, "admin")


@pytest.fixture
def as_collector(client: TestClient, collector: User) -> Iterator[TestClient]:
    assert login(client, collector.email).status_code == 303
    yield client


@pytest.fixture
def as_admin(client: TestClient, admin: User) -> Iterator[TestClient]:
    assert login(client, admin.email).status_code == 303
    yield client
