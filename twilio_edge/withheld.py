"""Texts held back behind a WhatsApp template until the debtor replies.

Outside the 24-hour window WhatsApp only accepts an approved template ("reply to read your
message"). The text we meant to send is kept on the template's Message; further texts in the same
burst join it instead of sending the template again; the debtor's reply opens the window and the
held texts are released as the first part of our answer.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.base import utcnow
from relance.db.models import Conversation, Message
from relance.db.models.enums import Channel, Direction

BURST = timedelta(hours=1)  # texts within this delay share one template
KEEP = timedelta(days=14)  # older held texts are stale: the collectors see them in the transcript


def _templates(
    session: Session, conversation: Conversation, address: str, since: timedelta
) -> list[Message]:
    rows = session.scalars(
        select(Message)
        .where(
            Message.conversation_id == conversation.id,
            Message.direction == Direction.OUTBOUND,
            Message.channel == Channel.WHATSAPP,
            Message.address == address,
            Message.created_at >= utcnow() - since,
        )
        .order_by(Message.id)
    ).all()
    return [
        m
        for m in rows
        if (m.extra or {}).get("template") and not (m.extra or {}).get("released_at")
    ]


def open_template(session: Session, conversation: Conversation, address: str) -> Message | None:
    """A template sent in the last hour, still unanswered, that new texts can join."""
    recent = _templates(session, conversation, address, BURST)
    if not recent or recent[-1].status in ("failed", "undelivered"):
        return None
    last = recent[-1]
    replied = session.scalars(
        select(Message.id).where(
            Message.conversation_id == conversation.id,
            Message.direction == Direction.INBOUND,
            Message.channel == Channel.WHATSAPP,
            Message.id > last.id,
        )
    ).first()
    return None if replied is not None else last


def hold(message: Message, text: str) -> None:
    extra = dict(message.extra or {})
    extra["withheld_texts"] = [*extra.get("withheld_texts", []), text]
    message.extra = extra


def release(session: Session, conversation: Conversation, address: str) -> list[str]:
    """The texts held behind templates, oldest first; marks them released (sent once)."""
    texts: list[str] = []
    for message in _templates(session, conversation, address, KEEP):
        extra = dict(message.extra or {})
        texts.extend(extra.get("withheld_texts", []))
        extra["released_at"] = utcnow().isoformat()
        message.extra = extra
    return texts
