"""Twilio webhooks signed with the wrong key, tampered after signing, or replayed to another URL:
each is a 403 and stores nothing. (The fuzz run covers random signatures; these are the
near-misses an attacker would actually try.)"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from relance.db.models import AuditEvent, Message, WebhookEvent
from relance.settings import Settings

FORM = {
    "AccountSid": "ACtest00000000000000000000000000",
    "MessageSid": "SM0123456789abcdef0123456789abcdef",
    "From": "+33639980001",
    "To": "+33757000000",
    "Body": "Bonjour 👋 '; DROP TABLE messages; --",
    "MessageStatus": "delivered",
}


def stored(db: Session) -> tuple[int, ...]:
    return tuple(
        db.scalar(select(func.count()).select_from(m)) or 0
        for m in (Message, WebhookEvent, AuditEvent)
    )


def sign(key: str, url: str, form: dict[str, str]) -> str:
    return RequestValidator(key).compute_signature(url, form)


@pytest.mark.parametrize("path", ["/twilio/sms", "/twilio/status"])
def test_near_miss_signatures_are_403_and_store_nothing(
    client: TestClient, db: Session, settings: Settings, path: str
) -> None:
    url = settings.public_base_url + path
    good_key = settings.twilio_auth_token
    tampered = {**FORM, "Body": FORM["Body"] + "!"}
    attempts = {
        "wrong key": (sign("not-the-auth-token", url, FORM), FORM),
        "tampered body": (sign(good_key, url, FORM), tampered),
        "replayed to another URL": (sign(good_key, settings.public_base_url + "/x", FORM), FORM),
        "empty": ("", FORM),
        "non-ascii": ("é" * 28, FORM),
    }
    before = stored(db)
    for label, (signature, form) in attempts.items():
        response = client.post(
            path, data=form, headers={"X-Twilio-Signature": signature.encode("utf-8")}
        )
        assert response.status_code == 403, (label, response.status_code)
    assert stored(db) == before
