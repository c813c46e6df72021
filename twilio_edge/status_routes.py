"""`POST /twilio/status`: one status-callback URL, routed to the channel that owns the resource.

Messages we send ask Twilio to report to `/twilio/status`; a number configured in the Twilio
console may also send *call* progress there. The edge parses the form (`forms.parse_status_callback`)
and hands a message status to the messaging channel and a call status to the voice channel. It
cannot import those channels (they depend on the edge, not the other way round), so the process
assembly (`relance.app`) passes their handlers in: no channel imports another to forward a status.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from sqlalchemy.orm import Session

from relance.web.deps import DbSession
from twilio_edge.forms import CallStatusCallback, MessageStatusCallback, parse_status_callback
from twilio_edge.signature import verified_twilio_form

MessageStatusHandler = Callable[[Session, MessageStatusCallback], None]
CallStatusHandler = Callable[[Session, CallStatusCallback], None]


def status_router(*, on_message: MessageStatusHandler, on_call: CallStatusHandler) -> APIRouter:
    """The shared status route, wired to the handlers of the channels that send and call."""
    router = APIRouter(tags=["twilio"])

    @router.post("/twilio/status", status_code=204)
    def status_callback(
        fields: Annotated[dict[str, str], Depends(verified_twilio_form)], db: DbSession
    ) -> Response:
        """Delivery status of a message we sent (MessageSid) or progress of a call (CallSid)."""
        callback = parse_status_callback(fields)
        if isinstance(callback, MessageStatusCallback):
            on_message(db, callback)
        else:
            on_call(db, callback)
        return Response(status_code=204)

    return router
