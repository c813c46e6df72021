"""Disputes, payment plans, promises, handoffs, letters, conversations and the active policy."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from relance.db.models import VersionedDocument
from tests.factories import (
    make_conversation,
    make_debtor,
    make_dispute,
    make_handoff,
    make_invoice,
    make_letter,
    make_message,
    make_plan,
    make_promise,
)


def listed(client: TestClient, auth: dict[str, str], path: str, **params: Any) -> list[int]:
    response = client.get(f"/api/v1{path}", params=params, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items", "total", "limit", "offset", "next_offset"}
    return [item["id"] for item in body["items"]]


def test_disputes_filter_by_status_debtor_and_invoice(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    a, b = make_debtor(db), make_debtor(db)
    inv = make_invoice(db, a)
    open_one = make_dispute(db, a, invoice_id=inv.id, details="Livraison incomplète 📦")
    closed = make_dispute(db, b, status="resolved", resolution_note="credit note issued")
    assert listed(client, auth, "/disputes") == [open_one.id, closed.id]
    assert listed(client, auth, "/disputes", status="open") == [open_one.id]
    assert listed(client, auth, "/disputes", debtor_id=b.id) == [closed.id]
    assert listed(client, auth, "/disputes", invoice_id=inv.id) == [open_one.id]
    item = client.get("/api/v1/disputes", headers=auth).json()["items"][0]
    assert item["details"] == "Livraison incomplète 📦"
    assert item["reference"] == open_one.reference
    bad = client.get("/api/v1/disputes", params={"status": "pending"}, headers=auth)
    assert bad.status_code == 422


def test_payment_plans_include_installments_as_money(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    debtor = make_debtor(db)
    live = make_plan(db, debtor, [4_500, 4_500], currency="GBP")
    make_plan(db, make_debtor(db), status="broken")
    assert listed(client, auth, "/payment-plans", status="active") == [live.id]
    plan = client.get("/api/v1/payment-plans", params={"debtor_id": debtor.id}, headers=auth)
    [item] = plan.json()["items"]
    assert item["total"] == {"amount_minor": 9_000, "currency": "GBP"}
    assert [i["amount"]["amount_minor"] for i in item["installments"]] == [4_500, 4_500]
    assert item["installments"][0]["paid"] == {"amount_minor": 0, "currency": "GBP"}


def test_promises_filter_by_status_and_date(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    debtor = make_debtor(db)
    soon = make_promise(db, debtor, promised_date=date(2026, 12, 1))
    later = make_promise(db, debtor, promised_date=date(2027, 1, 15), status="kept")
    assert listed(client, auth, "/promises", status="kept") == [later.id]
    assert listed(client, auth, "/promises", due_before="2026-12-31") == [soon.id]
    assert listed(client, auth, "/promises", due_after="2026-12-01") == [later.id]
    assert listed(client, auth, "/promises", debtor_id=debtor.id) == [soon.id, later.id]


def test_handoffs_carry_the_debtor_and_filter(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    debtor = make_debtor(db)
    conv = make_conversation(db, debtor)
    waiting = make_handoff(db, conv, reason="vulnerability", priority=5)
    done = make_handoff(db, conv, status="closed")
    assert listed(client, auth, "/handoffs", status="open") == [waiting.id]
    assert listed(client, auth, "/handoffs", reason="vulnerability") == [waiting.id]
    assert listed(client, auth, "/handoffs", debtor_id=debtor.id) == [waiting.id, done.id]
    assert listed(client, auth, "/handoffs", debtor_id=debtor.id + 1000) == []
    item = client.get("/api/v1/handoffs", headers=auth).json()["items"][0]
    assert (item["debtor_id"], item["conversation_id"], item["priority"]) == (debtor.id, conv.id, 5)


def test_letters_show_the_amounts_claimed(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    debtor = make_debtor(db)
    queued = make_letter(db, debtor)
    sent = make_letter(db, debtor, status="sent", tracking_number="1A23456789", pdf_path="x.pdf")
    assert listed(client, auth, "/letters", status="sent") == [sent.id]
    assert listed(client, auth, "/letters", kind="mise_en_demeure") == [queued.id, sent.id]
    item = client.get("/api/v1/letters", params={"status": "sent"}, headers=auth).json()["items"][0]
    assert item["principal"] == {"amount_minor": 10_000, "currency": "EUR"}
    assert item["has_pdf"] is True and "pdf_path" not in item


def test_conversations_and_their_messages(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    debtor = make_debtor(db)
    conv = make_conversation(db, debtor, mode="human", last_channel="whatsapp")
    make_conversation(db, make_debtor(db))
    first = make_message(db, conv, "Bonjour, j'ai déjà payé 👍")
    reply = make_message(db, conv, "Merci", direction="outbound", author="bot", status="sent")
    assert listed(client, auth, "/conversations", mode="human") == [conv.id]
    assert listed(client, auth, "/conversations", channel="whatsapp") == [conv.id]
    assert listed(client, auth, "/conversations", debtor_id=debtor.id) == [conv.id]
    path = f"/conversations/{conv.id}/messages"
    assert listed(client, auth, path) == [first.id, reply.id]
    assert listed(client, auth, path, direction="outbound") == [reply.id]
    body = client.get(f"/api/v1{path}", headers=auth).json()["items"][0]
    assert body["body"] == "Bonjour, j'ai déjà payé 👍"


def test_messages_of_an_unknown_conversation_are_404(
    client: TestClient, auth: dict[str, str]
) -> None:
    response = client.get("/api/v1/conversations/123456/messages", headers=auth)
    assert response.status_code == 404
    assert response.json()["error"] == "conversation_not_found"


def test_active_policy_is_the_seed_until_one_is_saved(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    seed = client.get("/api/v1/policies/active", headers=auth).json()
    assert (seed["version"], seed["source"], seed["id"]) == (0, "seed", None)
    assert seed["document"]
    for version, active in ((1, False), (2, True)):
        db.add(
            VersionedDocument(
                kind="policy",
                version=version,
                document={"v": version},
                created_by="admin",
                active=active,
            )
        )
    db.flush()
    stored = client.get("/api/v1/policies/active", headers=auth).json()
    assert (stored["version"], stored["source"], stored["document"]) == (2, "stored", {"v": 2})


def test_pagination_bounds_are_enforced(client: TestClient, auth: dict[str, str]) -> None:
    for params in (
        {"limit": 0},
        {"limit": 201},
        {"offset": -1},
        {"offset": 10**7},
        {"debtor_id": 2**31},
        {"debtor_id": "1; DROP TABLE invoices"},
    ):
        response = client.get("/api/v1/promises", params=params, headers=auth)
        assert response.status_code == 422, params
