"""Conversations (one per debtor across channels), their messages and handoffs to collectors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from relance.db.base import Base, TimestampMixin, utcnow
from relance.db.models.enums import ConversationMode, HandoffStatus


class Conversation(TimestampMixin, Base):
    """The debtor's thread with us. `sender_id` is the Rasa conversation id."""

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int | None] = mapped_column(
        ForeignKey("debtors.id", ondelete="CASCADE"), unique=True
    )
    sender_id: Mapped[str] = mapped_column(String(80), unique=True)
    mode: Mapped[str] = mapped_column(String(8), default=ConversationMode.BOT)
    language: Mapped[str] = mapped_column(String(8), default="fr")
    last_channel: Mapped[str | None] = mapped_column(String(16))
    last_inbound_at: Mapped[datetime | None]
    last_message_at: Mapped[datetime | None] = mapped_column(index=True)
    identity_verified_at: Mapped[datetime | None]
    # Channels on which a message saying "you are talking to an automated assistant" has gone
    # out (EU AI Act art. 50): `relance.compliance.disclosure` adds it to the first one otherwise.
    disclosed_channels: Mapped[list[str] | None] = mapped_column(JSON)

    debtor = relationship("Debtor")
    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation", order_by="Message.id", cascade="all, delete-orphan"
    )


class Message(Base):
    """One message in or out. `provider_id` (Twilio MessageSid/CallSid+turn) is unique: retries are no-ops."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    direction: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(16))
    author: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str | None] = mapped_column(String(254))  # the debtor-side address used
    # Twilio MessageSid / CallSid+turn, or an e-mail Message-ID (up to 255 characters).
    provider_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(24))
    error_code: Mapped[str | None] = mapped_column(String(32))
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")


class Handoff(TimestampMixin, Base):
    """A conversation waiting for, or owned by, a human collector."""

    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    reason: Mapped[str] = mapped_column(
        String(40)
    )  # requested, fallback, vulnerability, legal, plan_approval...
    details: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16), default=HandoffStatus.OPEN, index=True)
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[datetime | None]

    conversation: Mapped[Conversation] = relationship()


class WebhookEvent(Base):
    """Every provider callback stored by its id; the unique key makes a retried webhook harmless.

    `response_body` keeps what we answered so a retry gets the very same answer.
    """

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    response_body: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReplyRetry(TimestampMixin, Base):
    """A reply whose send failed for a transient reason, retried by the worker.

    One row per outbound Message (unique): the retry sends that same row again (for e-mail the
    same Message-ID, so a resend is the same e-mail), never a new message. `status`: pending
    (due at `next_attempt_at`), sending (claimed by one worker until `next_attempt_at`, its
    lease), sent, failed (permanent, cap reached or outcome unknown: a person answers) or
    cancelled (an opt-out or a collector took the conversation). `attempts` counts the sends
    made, the first (failed) one included. E-mail replies keep their idempotency key and the
    reply rows the e-mail carries (`mail_rows`, the first being the e-mail itself); the texts
    stay on those Message rows, never copied here.

    The answer to an unknown sender's e-mail (an address not on file: the identity-check
    answer, no debt detail) has no conversation, Message or Contact: `message_id` and
    `contact_id` are empty, `address` is whom it goes to and `mail_bytes` the e-mail as
    composed for its first send, sent again byte for byte (its Message-ID included).
    """

    __tablename__ = "reply_retries"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(default=1)
    next_attempt_at: Mapped[datetime] = mapped_column(index=True)
    mail_key: Mapped[str | None] = mapped_column(String(255))
    mail_rows: Mapped[list[int] | None] = mapped_column(JSON)
    address: Mapped[str | None] = mapped_column(String(254))
    mail_bytes: Mapped[bytes | None] = mapped_column(LargeBinary)
    last_error_code: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None]

    message: Mapped[Message | None] = relationship()
