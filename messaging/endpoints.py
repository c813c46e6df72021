"""`POST /twilio/sms`: SMS and WhatsApp inbound, answered inline with TwiML `<Message>`s."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from messaging import service
from messaging.twilio_signature import verified_twilio_form
from messaging.twiml import twiml_response
from relance.web.deps import DbSession

router = APIRouter(tags=["twilio"])


@router.post("/twilio/sms")
def inbound_sms(
    fields: Annotated[dict[str, str], Depends(verified_twilio_form)], db: DbSession
) -> Response:
    return twiml_response(service.handle_inbound_webhook(db, fields))
