"""`POST /twilio/status`: the edge hands message statuses to one handler and call statuses to the
other (the channels never forward to each other); a form without its ids is a clear 400."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from relance.settings import Settings
from relance.web.errors import install_error_handlers
from tests.support.twilio_signing import post
from twilio_edge.forms import CallStatusCallback, MessageStatusCallback
from twilio_edge.status_routes import status_router

SMS_SID = "SM" + "c" * 32
CALL_SID = "CA" + "d" * 32


@pytest.fixture
def routed(db: Session, settings: Settings) -> Iterator[tuple[TestClient, list[object]]]:
    received: list[object] = []
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(
        status_router(
            on_message=lambda _db, callback: received.append(callback),
            on_call=lambda _db, callback: received.append(callback),
        )
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, received


def test_message_and_call_statuses_reach_their_own_handler(
    routed: tuple[TestClient, list[object]],
) -> None:
    client, received = routed
    message = {"MessageSid": SMS_SID, "SmsSid": SMS_SID, "MessageStatus": "delivered"}
    call = {"CallSid": CALL_SID, "CallStatus": "completed", "CallDuration": "12"}
    assert post(client, "/twilio/status", message).status_code == 204
    assert post(client, "/twilio/status", call).status_code == 204

    first, second = received
    assert isinstance(first, MessageStatusCallback) and first.status == "delivered"
    assert isinstance(second, CallStatusCallback) and second.duration_seconds == 12


def test_a_status_without_ids_or_signature_is_refused_with_a_clear_message(
    routed: tuple[TestClient, list[object]],
) -> None:
    client, received = routed
    response = post(client, "/twilio/status", {"MessageStatus": "delivered"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"] == "MessageSid or CallSid is required"
    forged = post(
        client, "/twilio/status", {"CallSid": CALL_SID, "CallStatus": "busy"}, signature="x"
    )
    assert forged.status_code == 403
    assert received == []
