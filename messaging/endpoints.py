"""Twilio messaging webhook: `POST /twilio/sms` (SMS + WhatsApp inbound).

The signature is checked and the form parsed into `InboundMessage` by the shared Twilio edge; the
session commits before the answer is sent, so a 200 tells Twilio the work is durable. Message
status callbacks arrive on the edge's shared `/twilio/status` route, which the app wires to
`messaging.status.handle_status_callback`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from messaging import service
from relance.web.deps import DbSession
from twilio_edge.forms import InboundMessage
from twilio_edge.responses import twiml_response
from twilio_edge.signature import twilio_form

router = APIRouter(tags=["twilio"])


@router.post("/twilio/sms")
def inbound_sms(
    message: Annotated[InboundMessage, Depends(twilio_form(InboundMessage))], db: DbSession
) -> Response:
    """Inbound SMS or WhatsApp message; replies come back as TwiML <Message>s."""
    return twiml_response(service.handle_inbound_webhook(db, message))
