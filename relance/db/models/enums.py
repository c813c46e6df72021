"""String constants stored in the DB. Plain strings keep migrations portable across SQLite/PostgreSQL."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    SMS = "sms"
    WHATSAPP = "whatsapp"
    VOICE = "voice"
    SIMULATOR = "simulator"
    LETTER = "letter"
    EMAIL = "email"


class Segment(StrEnum):
    B2B = "b2b"
    CONSUMER = "consumer"


class InvoiceStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"
    DISPUTED = "disputed"
    CANCELLED = "cancelled"


class ConversationMode(StrEnum):
    BOT = "bot"
    HUMAN = "human"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Author(StrEnum):
    DEBTOR = "debtor"
    BOT = "bot"
    COLLECTOR = "collector"
    SYSTEM = "system"


class MessageStatus(StrEnum):
    RECEIVED = "received"  # inbound, handled by the assistant
    PENDING_ASSISTANT = "pending_assistant"  # inbound, assistant unreachable: replay later
    HELD = "held"  # inbound while a collector owns the conversation
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNDELIVERED = "undelivered"
    REPLIED_INLINE = "replied_inline"  # outbound returned as TwiML in the webhook answer


class ContactStatus(StrEnum):
    OK = "ok"
    FAILING = "failing"
    WRONG_PERSON = "wrong_person"
    BOUNCED = "bounced"  # e-mail: a hard bounce (DSN 5.x.x), never used again until corrected


class DisputeStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"  # in the debtor's favour: invoice corrected or cancelled
    REJECTED = "rejected"  # dunning resumes


class PlanStatus(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    ACTIVE = "active"
    COMPLETED = "completed"
    BROKEN = "broken"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class InstallmentStatus(StrEnum):
    DUE = "due"
    PAID = "paid"
    PARTIAL = "partial"
    MISSED = "missed"


class PromiseStatus(StrEnum):
    PENDING = "pending"
    KEPT = "kept"
    BROKEN = "broken"
    CANCELLED = "cancelled"


class HandoffStatus(StrEnum):
    OPEN = "open"
    ASSIGNED = "assigned"
    CLOSED = "closed"


class LetterStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    CANCELLED = "cancelled"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class Role(StrEnum):
    COLLECTOR = "collector"
    ADMIN = "admin"
