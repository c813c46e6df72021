"""Twilio Voice webhooks: call start, gather callbacks, transfer result and call status.

Every route checks X-Twilio-Signature over the public URL *with its query string*, which is how
the per-call state (`turn`, `attempt`, `purpose`) is protected from tampering; the shared Twilio
edge then parses the form into its typed model (`twilio_edge.forms`) for the service.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from relance.web.deps import DbSession
from twilio_edge.forms import CallDialResult, CallGather, CallStart, CallStatusCallback
from twilio_edge.responses import twiml_response
from twilio_edge.signature import twilio_form
from voice import service
from voice.status import handle_call_status

router = APIRouter(tags=["voice"])
Turn = Annotated[int, Query(ge=0, le=500)]


@router.post("/twilio/voice")
def call_start(
    call: Annotated[CallStart, Depends(twilio_form(CallStart))],
    db: DbSession,
    purpose: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Inbound call, or an outbound call we placed that was just answered (AnsweredBy set)."""
    return twiml_response(service.start(db, call, purpose))


@router.post("/twilio/voice/gather")
def call_gather(
    call: Annotated[CallGather, Depends(twilio_form(CallGather))],
    db: DbSession,
    turn: Turn,
    attempt: Annotated[int, Query(ge=0, le=service.MAX_REPROMPTS)] = 0,
) -> Response:
    """Speech or keypad input (or silence) after a prompt."""
    return twiml_response(service.gathered(db, call, turn, attempt))


@router.post("/twilio/voice/dial")
def call_dial_finished(
    call: Annotated[CallDialResult, Depends(twilio_form(CallDialResult))], db: DbSession, turn: Turn
) -> Response:
    """Result of a live transfer to a collector."""
    return twiml_response(service.dial_finished(db, call, turn))


@router.post("/twilio/voice/status", status_code=204)
def call_status(
    callback: Annotated[CallStatusCallback, Depends(twilio_form(CallStatusCallback))],
    db: DbSession,
) -> Response:
    """Call progress, duration and outcome."""
    handle_call_status(db, callback)
    return Response(status_code=204)
