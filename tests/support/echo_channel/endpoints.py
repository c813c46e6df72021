"""Echo webhook: `POST /twilio/echo`, signed and parsed by the Twilio edge."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from relance.web.deps import DbSession
from tests.support.echo_channel import service
from twilio_edge.forms import InboundMessage
from twilio_edge.responses import twiml_response
from twilio_edge.signature import twilio_form

router = APIRouter(tags=["echo"])


@router.post("/twilio/echo")
def inbound_echo(
    message: Annotated[InboundMessage, Depends(twilio_form(InboundMessage))], db: DbSession
) -> Response:
    return twiml_response(service.echo(db, message))
