"""Build requests exactly as Twilio sends them: form-encoded fields + X-Twilio-Signature.

The signature covers the public URL (PUBLIC_BASE_URL + path + query) and the sorted form fields,
computed with twilio's own RequestValidator so tests and production agree on the algorithm.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from twilio.request_validator import RequestValidator

from relance.settings import get_settings


def sign(url: str, fields: dict[str, str], auth_token: str | None = None) -> str:
    token = auth_token if auth_token is not None else get_settings().twilio_auth_token
    return RequestValidator(token).compute_signature(url, fields)


def public_url(path_and_query: str) -> str:
    if path_and_query.startswith("http"):
        return path_and_query
    return get_settings().public_base_url.rstrip("/") + path_and_query


def post(
    client: TestClient,
    path_and_query: str,
    fields: dict[str, str],
    *,
    signature: str | None = None,
    auth_token: str | None = None,
) -> Response:
    """POST like Twilio. `path_and_query` may be a full public URL taken from TwiML."""
    url = public_url(path_and_query)
    local = url[len(get_settings().public_base_url.rstrip("/")) :]
    headers: dict[str, Any] = {
        "X-Twilio-Signature": signature if signature is not None else sign(url, fields, auth_token),
        "User-Agent": "TwilioProxy/1.1",
    }
    return client.post(local, data=fields, headers=headers)


def message_sid() -> str:
    return "SM" + uuid.uuid4().hex


def call_sid() -> str:
    return "CA" + uuid.uuid4().hex


def sms_fields(
    sender: str, body: str, *, to: str | None = None, sid: str | None = None, **extra: str
) -> dict[str, str]:
    """The fields Twilio posts for an inbound SMS (or WhatsApp when `sender` is whatsapp:+…)."""
    settings = get_settings()
    whatsapp = sender.startswith("whatsapp:")
    sid = sid or message_sid()
    fields = {
        "ToCountry": "FR",
        "ToState": "",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": body,
        "FromCountry": "FR",
        "To": to or (settings.twilio_whatsapp_from if whatsapp else settings.twilio_sms_from),
        "ToZip": "",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": settings.twilio_account_sid,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }
    if whatsapp:
        fields["ProfileName"] = "Debtor"
        fields["WaId"] = sender.removeprefix("whatsapp:+")
    fields.update(extra)
    return fields


def call_fields(
    debtor_number: str,
    *,
    sid: str,
    outbound: bool = False,
    status: str = "in-progress",
    **extra: str,
) -> dict[str, str]:
    """The fields Twilio posts to a voice webhook, inbound or for a call we placed."""
    settings = get_settings()
    ours = settings.twilio_voice_from
    fields = {
        "AccountSid": settings.twilio_account_sid,
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "CallStatus": status,
        "Called": ours if not outbound else debtor_number,
        "Caller": debtor_number if not outbound else ours,
        "Direction": "outbound-api" if outbound else "inbound",
        "From": ours if outbound else debtor_number,
        "To": debtor_number if outbound else ours,
        "FromCountry": "FR",
        "ToCountry": "FR",
    }
    fields.update(extra)
    return fields
