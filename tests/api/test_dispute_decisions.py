"""POST /disputes/{id}/resolve and /reject: decided through the disputes service, audited."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import AuditEvent, Dispute, Invoice
from tests.factories import make_debtor, make_dispute, make_invoice


def open_dispute(db: Session) -> tuple[Dispute, Invoice]:
    debtor = make_debtor(db)
    invoice = make_invoice(db, debtor, status="disputed")
    return make_dispute(db, debtor, invoice_id=invoice.id), invoice


def test_resolve_cancels_the_invoice_and_is_audited_as_the_token(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    dispute, invoice = open_dispute(db)
    response = client.post(
        f"/api/v1/disputes/{dispute.id}/resolve", json={"note": "Avoir émis 🧾"}, headers=auth
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["resolution_note"], body["resolved_by"]) == (
        "resolved",
        "Avoir émis 🧾",
        "api:erp",
    )
    db.expire_all()
    assert db.get(Invoice, invoice.id).status == "cancelled"
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "dispute.resolved")).one()
    assert (event.actor, event.entity_id) == ("api:erp", str(dispute.id))


def test_reject_reopens_the_invoice(client: TestClient, db: Session, auth: dict[str, str]) -> None:
    dispute, invoice = open_dispute(db)
    response = client.post(
        f"/api/v1/disputes/{dispute.id}/reject",
        json={"note": "Delivery proof on file"},
        headers=auth,
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "rejected"
    db.expire_all()
    assert db.get(Invoice, invoice.id).status == "open"


def test_a_closed_dispute_cannot_be_decided_again(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    dispute, _ = open_dispute(db)
    url = f"/api/v1/disputes/{dispute.id}"
    assert client.post(f"{url}/reject", json={"note": "no"}, headers=auth).status_code == 200
    again = client.post(f"{url}/resolve", json={"note": "yes"}, headers=auth)
    assert again.status_code == 409
    assert again.json()["error"] == "dispute_closed"
    db.expire_all()
    assert db.get(Dispute, dispute.id).status == "rejected"


def test_unknown_dispute_is_404(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post("/api/v1/disputes/99999/resolve", json={"note": "x"}, headers=auth)
    assert response.status_code == 404


def test_bad_notes_are_422_and_change_nothing(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    dispute, invoice = open_dispute(db)
    url = f"/api/v1/disputes/{dispute.id}/resolve"
    for payload in (
        {},
        {"note": ""},
        {"note": "   "},
        {"note": "a\x00b"},
        {"note": "x" * 2001},
        {"note": 5},
        {"note": "ok", "extra": True},
    ):
        response = client.post(url, json=payload, headers=auth)
        assert response.status_code == 422, payload
    db.expire_all()
    assert db.get(Dispute, dispute.id).status == "open"
    assert db.get(Invoice, invoice.id).status == "disputed"
    assert db.scalars(select(AuditEvent).where(AuditEvent.action.like("dispute.%"))).all() == []


def test_decisions_need_a_token(client: TestClient, db: Session) -> None:
    dispute, _ = open_dispute(db)
    response = client.post(f"/api/v1/disputes/{dispute.id}/resolve", json={"note": "x"})
    assert response.status_code == 401
    db.expire_all()
    assert db.get(Dispute, dispute.id).status == "open"
