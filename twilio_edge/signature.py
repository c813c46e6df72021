"""X-Twilio-Signature check, as FastAPI dependencies shared by every Twilio webhook.

Twilio signs the public URL it called plus the sorted form fields. Behind a proxy the URL the app
sees differs from the public one, so we rebuild it from `PUBLIC_BASE_URL` + path + query.

`twilio_form(Model)` is what a channel's endpoint declares: the signature is checked first (a
forged request is a 403 whatever it contains), then the fields are parsed into the typed form
(`twilio_edge.forms`; a malformed one is a 400 naming the field). The service gets the model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import Request
from twilio.request_validator import RequestValidator

from relance.errors import BadInput, Forbidden
from relance.settings import get_settings
from twilio_edge.forms import TwilioForm

F = TypeVar("F", bound=TwilioForm)


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


def twilio_form(model: type[F]) -> Callable[[Request], Awaitable[F]]:
    """A dependency returning the request's fields as `model`, once the signature is checked."""

    async def dependency(request: Request) -> F:
        return model.parse(await verified_twilio_form(request))

    dependency.__name__ = f"verified_{model.__name__}"
    return dependency
