"""A database that is unreachable or restarting is a 503 with Retry-After (webhook providers then
retry), never a 500, whether the error comes from the work or from the commit at the boundary."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

import messaging.service
from relance.db import session as db_session
from tests.support.twilio_signing import post, sms_fields


def _dropped() -> OperationalError:
    return OperationalError(
        "SELECT 1", {}, Exception("server closed the connection unexpectedly"), True
    )


def test_database_gone_during_the_work_is_503_with_retry_after(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_args: object) -> str:
        raise _dropped()

    monkeypatch.setattr(messaging.service, "handle_inbound_webhook", fail)
    response = post(client, "/twilio/sms", sms_fields("+33639981111", "Bonjour"))
    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()
    assert response.json()["error"] == "database_unavailable"


def test_database_gone_at_commit_is_503_too(
    client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = db_session.get_sessionmaker()

    def failing_factory() -> Session:
        session = factory()

        def commit() -> None:
            raise InterfaceError("COMMIT", {}, Exception("connection already closed"))

        session.commit = commit  # type: ignore[method-assign]
        return session

    monkeypatch.setattr(db_session, "get_sessionmaker", lambda: failing_factory)
    response = post(client, "/twilio/sms", sms_fields("+33639989999", "Bonjour"))
    assert response.status_code == 503
    assert "retry-after" in response.headers


def test_stripe_webhook_during_outage_is_503(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import payment_links.webhooks

    def fail(*_args: object, **_kwargs: object) -> dict[str, object]:
        raise _dropped()

    monkeypatch.setattr(payment_links.webhooks, "process", fail)
    response = client.post(
        "/stripe/webhook", content=b"{}", headers={"Stripe-Signature": "t=1,v1=x"}
    )
    assert response.status_code == 503
    assert "retry-after" in response.headers
