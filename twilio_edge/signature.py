"""X-Twilio-Signature check, as a FastAPI dependency shared by the SMS, voice and status webhooks.

Twilio signs the public URL it called plus the sorted form fields. Behind a proxy the URL the app
sees differs from the public one, so we rebuild it from `PUBLIC_BASE_URL` + path + query.
"""

from __future__ import annotations

from fastapi import Request
from twilio.request_validator import RequestValidator

from relance.errors import BadInput, Forbidden
from relance.settings import get_settings


def public_url(request: Request) -> str:
    base = get_settings().public_base_url.rstrip("/")
    query = request.url.query
    return f"{base}{request.url.path}" + (f"?{query}" if query else "")


async def verified_twilio_form(request: Request) -> dict[str, str]:
    """Return the form fields of a genuine Twilio request; 403 otherwise."""
    settings = get_settings()
    try:
        form = await request.form()
    except Exception as exc:  # malformed body
        raise BadInput("malformed_form", "malformed form body") from exc
    fields = {key: str(value) for key, value in form.multi_items()}
    if settings.twilio_validate_signatures:
        signature = request.headers.get("X-Twilio-Signature", "")
        # An empty token would make a signature anyone can compute: refuse (issue 17.2).
        key = settings.twilio_auth_token
        genuine = bool(key.strip() and signature) and RequestValidator(key).validate(
            public_url(request), fields, signature
        )
        if not genuine:
            raise Forbidden("invalid_signature", "invalid Twilio signature")
    return fields
