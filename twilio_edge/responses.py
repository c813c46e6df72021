"""The HTTP answer to a Twilio webhook: TwiML as `application/xml`.

The channel services build TwiML strings and know nothing of HTTP; their endpoints wrap them here.
"""

from __future__ import annotations

from fastapi import Response


def twiml_response(body: str) -> Response:
    return Response(content=body, media_type="application/xml")
