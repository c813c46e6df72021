"""TwiML answers for messaging webhooks (strings: the endpoints wrap them in HTTP responses)."""

from __future__ import annotations

from twilio.twiml.messaging_response import MessagingResponse


def messages_twiml(texts: list[str]) -> str:
    response = MessagingResponse()
    for text in texts:
        response.message(text)
    return str(response)
