"""Twilio addresses → (channel, E.164 address) as stored on contacts."""

from __future__ import annotations

import phonenumbers

from relance.db.models.enums import Channel

WHATSAPP_PREFIX = "whatsapp:"


class InvalidAddress(ValueError):
    """Not a possible phone number.

    Internal to the edge: `twilio_edge.forms` catches it in its pydantic validators and raises
    the field's own code (`invalid_phone`), which `TwilioForm.parse` turns into a BadInput."""


def to_e164(raw: str, default_region: str = "FR") -> str:
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidAddress(raw) from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidAddress(raw)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_twilio_from(raw: str) -> tuple[str, str]:
    """'whatsapp:+336…' → ('whatsapp', 'whatsapp:+336…'); '+336…' → ('sms', '+336…')."""
    if raw.startswith(WHATSAPP_PREFIX):
        return Channel.WHATSAPP, WHATSAPP_PREFIX + to_e164(raw[len(WHATSAPP_PREFIX) :])
    return Channel.SMS, to_e164(raw)
