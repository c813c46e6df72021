"""Echo service: typed form in, TwiML out; no FastAPI, refusals are `relance.errors`."""

from __future__ import annotations

from sqlalchemy.orm import Session

from relance.errors import BadInput
from twilio_edge import claims
from twilio_edge.forms import InboundMessage
from twilio_edge.twiml import messages_twiml


def echo(session: Session, message: InboundMessage) -> str:
    """Answer with the text received, once per MessageSid (a retry gets the stored answer)."""
    if not message.body:
        raise BadInput("empty_body", "Body is required by the echo channel")
    claimed = claims.claim(session, message.sid, "echo.inbound", message.payload)
    if not claimed.fresh:
        return claimed.event.response_body or messages_twiml([])
    return claims.finish(claimed, messages_twiml([message.body]))
