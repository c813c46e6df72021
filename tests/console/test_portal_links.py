"""Collectors send a debtor's portal link from the conversation, and revoke them; portal actions
show in the transcript the collector reads."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import AuditEvent
from relance.portal.access import live_accesses
from tests.console.conftest import FakeGateway, FakeRasa, csrf_of
from tests.factories import make_handed_off_case, make_invoice


def _post(client: TestClient, path: str):  # type: ignore[no-untyped-def]
    return client.post(path, data={"csrf_token": csrf_of(client)}, follow_redirects=False)


def test_send_then_revoke_portal_link(
    as_collector: TestClient, db: Session, gateway: FakeGateway, rasa: FakeRasa
) -> None:
    owner, conv, _h = make_handed_off_case(db)
    refused = _post(as_collector, f"/console/conversations/{conv.id}/portal-link")
    assert "error=Take+over" in refused.headers["location"]
    _post(as_collector, f"/console/conversations/{conv.id}/take-over")

    sent = _post(as_collector, f"/console/conversations/{conv.id}/portal-link")

    assert sent.headers["location"].endswith("done=portal_link_sent")
    text = gateway.sent[-1]["text"]
    assert "/portal/" in text and "espace personnel" in text  # French debtor, French wording
    path = "/portal/" + text.split("/portal/")[1].split()[0]
    assert as_collector.get(path).status_code == 200  # the identity form
    assert len(live_accesses(db, owner.id)) == 1

    revoked = _post(as_collector, f"/console/conversations/{conv.id}/portal-links/revoke")
    assert revoked.headers["location"].endswith("done=portal_links_revoked")
    assert live_accesses(db, owner.id) == []
    assert as_collector.get(path).status_code == 410
    actions = set(db.scalars(select(AuditEvent.action)))
    assert {"portal.link_sent", "portal.link_revoked"} <= actions


def test_portal_actions_appear_in_the_collector_transcript(
    as_collector: TestClient, db: Session
) -> None:
    from datetime import date, timedelta

    from relance.portal import service

    owner, conv, _h = make_handed_off_case(db)
    make_invoice(db, owner, 5000, due=date.today() - timedelta(days=3))
    service.promise(
        db,
        owner,
        promised_date=date.today() + timedelta(days=4),
        amount_minor=None,
        today=date.today(),
    )
    db.flush()
    page = as_collector.get(f"/console/conversations/{conv.id}")
    assert "[portal] promised to pay" in page.text


def test_a_portal_link_that_cannot_be_sent_is_shown_and_audited(
    as_collector: TestClient, db: Session, gateway: FakeGateway, rasa: FakeRasa
) -> None:
    from relance.conversations.ports import DeliveryError

    _owner, conv, _h = make_handed_off_case(db)
    _post(as_collector, f"/console/conversations/{conv.id}/take-over")
    gateway.fail_with = DeliveryError("carrier rejected", retryable=False, code="30006")
    response = _post(as_collector, f"/console/conversations/{conv.id}/portal-link")
    assert "link+could+not+be+sent" in response.headers["location"]
    actions = set(db.scalars(select(AuditEvent.action)))
    assert "portal.link_sent_failed" in actions and "portal.link_sent" not in actions
