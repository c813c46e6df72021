"""Call status callbacks: progress, duration and outcome on the call's Message (by CallSid).

Callbacks may arrive twice or out of order; a status never moves back (a late "ringing" after
"completed" is ignored) and a failed call flags the number so the dunning engine tries another
channel. Busy and no-answer are ordinary outcomes, not a bad number.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance import audit
from relance.contacts import service as contacts
from relance.conversations import repository
from relance.db.models import Message
from relance.db.models.enums import Channel, MessageStatus
from twilio_edge import claims
from twilio_edge.forms import MACHINE_ANSWERS, CallStatusCallback
from twilio_edge.statuses import CALL_RANK

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


def handle_call_status(session: Session, callback: CallStatusCallback) -> None:
    """Claim (sid, status) so a repeated callback is a no-op, then record progress and outcome."""
    sid, status = callback.sid, callback.status
    claimed = claims.claim(session, f"{sid}:call-status:{status}", "voice.status", callback.payload)
    claims.finish(claimed, "")
    if not claimed.fresh or status not in CALL_RANK:
        return
    call = session.scalars(select(Message).where(Message.provider_id == sid)).first()
    if call is None:
        return  # a call we never recorded (unknown caller): the stored event is the trace
    extra = dict(call.extra or {})
    if callback.answered_by:
        extra["answered_by"] = callback.answered_by
    if callback.duration_seconds is not None:
        extra["duration_seconds"] = max(
            callback.duration_seconds, int(extra.get("duration_seconds") or 0)
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
                session, contact, error_code=callback.error_code or "call_failed", reference=sid
            )


def _outcome(status: str, answered_by: object) -> str:
    if status != "completed":
        return status.replace("-", "_")  # busy, no_answer, canceled, failed
    if answered_by in MACHINE_ANSWERS:
        return "voicemail"
    return "answered"
