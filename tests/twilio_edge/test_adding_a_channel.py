"""The "Adding a channel" recipe of docs/architecture.md works: a channel in one folder
(tests/support/echo_channel) plugged into the app gets the edge's signature check, typed form,
clear 400s and claim-first idempotency without writing any of them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.app import create_app
from relance.db.models import WebhookEvent
from relance.settings import Settings
from tests.support.echo_channel.endpoints import router
from tests.support.twilio_signing import post, sms_fields

PHONE = "+33639981111"


@pytest.fixture
def echo_client(db: Session, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    app.include_router(router)  # step 4 of the recipe: what relance/app.py does per channel
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_a_signed_text_is_echoed_once_and_a_retry_gets_the_same_answer(
    echo_client: TestClient, db: Session
) -> None:
    fields = sms_fields(PHONE, "  Bonjour  ")
    first = post(echo_client, "/twilio/echo", fields)
    again = post(echo_client, "/twilio/echo", fields)

    assert first.status_code == 200 and first.headers["content-type"] == "application/xml"
    assert "<Message>Bonjour</Message>" in first.text
    assert again.text == first.text
    events = db.scalars(select(WebhookEvent).where(WebhookEvent.kind == "echo.inbound")).all()
    assert len(events) == 1 and events[0].payload["From"] == PHONE


def test_forged_and_malformed_requests_are_refused_before_anything_is_stored(
    echo_client: TestClient, db: Session
) -> None:
    fields = sms_fields(PHONE, "Bonjour")
    assert post(echo_client, "/twilio/echo", fields, signature="forged").status_code == 403
    bad_phone = post(echo_client, "/twilio/echo", {**fields, "From": "n'importe quoi"})
    assert bad_phone.status_code == 400
    assert bad_phone.json()["error"] == "invalid_phone"
    assert bad_phone.json()["detail"] == "From is not a valid phone number"
    empty = post(echo_client, "/twilio/echo", {**fields, "Body": " "})
    assert empty.status_code == 400 and empty.json()["error"] == "empty_body"
    assert db.scalars(select(WebhookEvent)).all() == []
