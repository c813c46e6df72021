"""TwiML answers for messaging webhooks."""

from __future__ import annotations

from fastapi import Response
from twilio.twiml.messaging_response import MessagingResponse


def messages_twiml(texts: list[str]) -> str:
    response = MessagingResponse()
    for text in texts:
        response.message(text)
    return str(response)


def twiml_response(body: str) -> Response:
    return Response(content=body, media_type="application/xml")
