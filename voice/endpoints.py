"""Twilio Voice webhooks: call start, gather callbacks, transfer result and call status.

Every route checks X-Twilio-Signature over the public URL *with its query string*, which is how
the per-call state (`turn`, `attempt`, `purpose`) is protected from tampering.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from messaging.twilio_signature import verified_twilio_form
from relance.web.deps import DbSession
from relance.web.twiml import twiml_response
from voice import service
from voice.status import handle_call_status

router = APIRouter(tags=["voice"])
TwilioForm = Annotated[dict[str, str], Depends(verified_twilio_form)]
Turn = Annotated[int, Query(ge=0, le=500)]


@router.post("/twilio/voice")
def call_start(
    fields: TwilioForm, db: DbSession, purpose: Annotated[str | None, Query(max_length=64)] = None
) -> Response:
    """Inbound call, or an outbound call we placed that was just answered (AnsweredBy set)."""
    return twiml_response(service.start(db, fields, purpose))


@router.post("/twilio/voice/gather")
def call_gather(
    fields: TwilioForm,
    db: DbSession,
    turn: Turn,
    attempt: Annotated[int, Query(ge=0, le=service.MAX_REPROMPTS)] = 0,
) -> Response:
    """Speech or keypad input (or silence) after a prompt."""
    return twiml_response(service.gathered(db, fields, turn, attempt))


@router.post("/twilio/voice/dial")
def call_dial_finished(fields: TwilioForm, db: DbSession, turn: Turn) -> Response:
    """Result of a live transfer to a collector."""
    return twiml_response(service.dial_finished(db, fields, turn))


@router.post("/twilio/voice/status", status_code=204)
def call_status(fields: TwilioForm, db: DbSession) -> Response:
    """Call progress, duration and outcome."""
    handle_call_status(db, fields)
    return Response(status_code=204)
