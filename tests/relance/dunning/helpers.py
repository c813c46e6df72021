"""Fakes shared by the dunning, compliance, letters, evidence and worker tests.

The rows they work on come from tests.factories.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from relance.conversations.ports import DeliveryError
from relance.db.models import Contact, Conversation, Message
from relance.rasa_client import BotMessage


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class FakeGateway:
    """Records every send; `fail[channel]` is a list of errors raised on the next sends."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail: dict[str, list[DeliveryError]] = {}

    def _record(
        self,
        session: Session,
        conversation: Conversation,
        contact: Contact,
        channel: str,
        body: str,
        **extra: Any,
    ) -> Message:
        errors = self.fail.get(channel) or []
        if errors:
            raise errors.pop(0)
        message = Message(
            conversation_id=conversation.id,
            direction="outbound",
            channel=channel,
            author="bot",
            body=body,
            address=contact.address,
            status="queued",
        )
        session.add(message)
        session.flush()
        self.sent.append(
            {
                "channel": channel,
                "body": body,
                "debtor_id": conversation.debtor_id,
                "address": contact.address,
                "message_id": message.id,
                **extra,
            }
        )
        return message

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
        return self._record(
            session,
            conversation,
            contact,
            contact.channel,
            text,
            first_contact_template=first_contact_template,
        )

    def place_call(
        self, session: Session, *, conversation: Conversation, contact: Contact, purpose: str
    ) -> Message:
        return self._record(session, conversation, contact, "voice", purpose)


class FakeAssistant:
    """Stands in for Rasa's trigger_intent: answers one text naming the stage and invoices."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.events: list[list[dict[str, Any]]] = []
        self.error = error

    def append_events(self, sender_id: str, events: list[dict[str, Any]]) -> None:
        self.events.append(events)

    def trigger_intent(
        self, sender_id: str, intent: str, entities: dict[str, Any] | None = None
    ) -> list[BotMessage]:
        self.calls.append((sender_id, intent, dict(entities or {})))
        if self.error:
            raise self.error
        refs = ", ".join((entities or {}).get("invoice_refs", []))
        return [BotMessage(text=f"[{(entities or {}).get('stage')}] {refs}")]
