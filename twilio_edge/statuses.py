"""Twilio message/call statuses → ours, with a rank so late callbacks never move a status back."""

from __future__ import annotations

from relance.db.models.enums import MessageStatus

MESSAGE_STATUS = {
    "accepted": MessageStatus.QUEUED,
    "scheduled": MessageStatus.QUEUED,
    "queued": MessageStatus.QUEUED,
    "sending": MessageStatus.QUEUED,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.FAILED,
}
FAILED = {MessageStatus.FAILED, MessageStatus.UNDELIVERED}
# Keyed by our status values; looked up with any string (an inbound status ranks lowest).
_RANK: dict[str, int] = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENT: 1,
    MessageStatus.FAILED: 2,
    MessageStatus.UNDELIVERED: 2,
    MessageStatus.DELIVERED: 2,
    MessageStatus.READ: 3,
}

# Call progress; every terminal status has the same, highest rank.
CALL_RANK = {
    "queued": 0,
    "initiated": 1,
    "ringing": 2,
    "in-progress": 3,
    "answered": 3,
    "completed": 4,
    "busy": 4,
    "no-answer": 4,
    "canceled": 4,
    "failed": 4,
}
CALL_FAILED = {"busy", "no-answer", "canceled", "failed"}


def message_rank(status: str) -> int:
    """Inbound or unknown statuses rank lowest: any delivery news replaces them."""
    return _RANK.get(status, -1)


def should_advance(current: str, new: str) -> bool:
    return message_rank(new) > message_rank(current)
