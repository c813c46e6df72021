"""Call status callbacks: progress, duration and outcome on the call's Message (by CallSid).

Callbacks may arrive twice or out of order; a status never moves back (a late "ringing" after
"completed" is ignored) and a failed call flags the number so the dunning engine tries another
channel. Busy and no-answer are ordinary outcomes, not a bad number.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from messaging import webhooks
from messaging.statuses import CALL_RANK
from relance import audit
from relance.contacts import service as contacts
from relance.conversations import repository
from relance.db.models import Message
from relance.db.models.enums import Channel, MessageStatus
from relance.errors import BadInput
from voice.service import MACHINE_ANSWERS

_MESSAGE_STATUS = {
    "queued": MessageStatus.QUEUED,
    "initiated": MessageStatus.QUEUED,
    "ringing": MessageStatus.QUEUED,
    "in-progress": MessageStatus.SENT,
    "answered": MessageStatus.SENT,
    "completed": MessageStatus.DELIVERED,
    "busy": MessageStatus.UNDELIVERED,
    "no-answer": MessageStatus.UNDELIVERED,
    "canceled": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
}


def handle_call_status(session: Session, fields: dict[str, str]) -> None:
    sid = fields.get("CallSid") or ""
    status = (fields.get("CallStatus") or "").lower()
    if not sid or not status:
        raise BadInput("missing_field", "CallSid and CallStatus are required")
    claimed = webhooks.claim(session, f"{sid}:call-status:{status}", "voice.status", fields)
    webhooks.finish(claimed, "")
    if not claimed.fresh or status not in CALL_RANK:
        return
    call = session.scalars(select(Message).where(Message.provider_id == sid)).first()
    if call is None:
        return  # a call we never recorded (unknown caller): the stored event is the trace
    extra = dict(call.extra or {})
    if fields.get("AnsweredBy"):
        extra["answered_by"] = fields["AnsweredBy"]
    if fields.get("CallDuration", "").isdigit():
        extra["duration_seconds"] = max(
            int(fields["CallDuration"]), int(extra.get("duration_seconds") or 0)
        )
    advanced = CALL_RANK[status] > CALL_RANK.get(str(extra.get("call_status")), -1)
    if advanced:
        extra["call_status"] = status
        call.status = _MESSAGE_STATUS[status]
        if CALL_RANK[status] == CALL_RANK["completed"]:
            extra["outcome"] = _outcome(status, extra.get("answered_by"))
    call.extra = extra
    if advanced and CALL_RANK[status] == CALL_RANK["completed"]:
        audit.record(
            session,
            actor="system",
            action="call.ended",
            entity=call,
            debtor_id=call.conversation.debtor_id,
            call_sid=sid,
            outcome=extra.get("outcome"),
            duration_seconds=extra.get("duration_seconds"),
        )
    if advanced and status == "failed" and call.address:
        contact = contacts.contact_for(
            session, Channel.VOICE, call.address
        ) or repository.find_contact(session, Channel.VOICE, call.address)
        if contact is not None:
            contacts.record_failure(
                session, contact, error_code=fields.get("ErrorCode") or "call_failed", reference=sid
            )


def _outcome(status: str, answered_by: object) -> str:
    if status != "completed":
        return status.replace("-", "_")  # busy, no_answer, canceled, failed
    if answered_by in MACHINE_ANSWERS:
        return "voicemail"
    return "answered"
