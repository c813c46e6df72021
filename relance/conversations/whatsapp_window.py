"""WhatsApp's customer-service window: the one copy of the rule.

A business may send free text on WhatsApp only within 24 hours of the person's last message to
it; outside, only an approved template (Twilio refuses free text there with error 63016). The
window belongs to the person's WhatsApp number. The dunning dispatcher asks it to choose the
template for a reminder, and the Twilio edge asks it at every send, a first one
(`TwilioGateway.send_text`) or a reply retry's (`resend_text`), at the moment of that send.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance.db.base import utcnow
from relance.db.models import Message
from relance.db.models.enums import Channel, Direction

WINDOW = timedelta(hours=24)


def is_open(
    session: Session, conversation_id: int, address: str, *, now: datetime | None = None
) -> bool:
    """Whether free text may go to `address` (`whatsapp:+E164`) now: it wrote to us within the
    last 24 hours, in this conversation."""
    last = session.scalar(
        select(func.max(Message.created_at)).where(
            Message.conversation_id == conversation_id,
            Message.direction == Direction.INBOUND,
            Message.channel == Channel.WHATSAPP,
            Message.address == address,
        )
    )
    return last is not None and (now or utcnow()) - last < WINDOW
