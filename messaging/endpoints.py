"""Twilio messaging webhooks: `POST /twilio/sms` (SMS + WhatsApp inbound) and `POST /twilio/status`.

Both are signature-checked by a dependency; the session commits before the answer is sent, so a
200 tells Twilio the work is durable.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from messaging import service, status
from messaging.twilio_signature import verified_twilio_form
from relance.web.deps import DbSession
from relance.web.twiml import twiml_response

router = APIRouter(tags=["twilio"])
TwilioForm = Annotated[dict[str, str], Depends(verified_twilio_form)]


@router.post("/twilio/sms")
def inbound_sms(fields: TwilioForm, db: DbSession) -> Response:
    """Inbound SMS or WhatsApp message; replies come back as TwiML <Message>s."""
    return twiml_response(service.handle_inbound_webhook(db, fields))


@router.post("/twilio/status", status_code=204)
def status_callback(fields: TwilioForm, db: DbSession) -> Response:
    """Delivery status of a message we sent (MessageSid) or progress of a call (CallSid)."""
    status.handle_status_callback(db, fields)
    return Response(status_code=204)
