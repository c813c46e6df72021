"""The debtor's reasons for paying late in the API: the 360° view and the list endpoint."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance.db.models import LatePaymentReason
from relance.late_reasons.service import StatedReason, record_stated
from tests.factories import make_conversation, make_debtor, make_message


def _state(db: Session, owner, conv, text: str):  # type: ignore[no-untyped-def]
    message = make_message(db, conv, text)
    return record_stated(
        db,
        owner,
        StatedReason(
            text=text,
            intent="cannot_pay",
            conversation=conv,
            message_id=message.id,
            channel="sms",
            language="fr",
            identity_verified=True,
        ),
    )


def test_debtor_360_shows_the_latest_reason_and_the_history(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    owner = make_debtor(db)
    conv = make_conversation(db, owner)
    old = _state(db, owner, conv, "je suis au chômage depuis mars")
    new = _state(db, owner, conv, "ma société est en redressement")
    body = client.get(f"/api/v1/debtors/{owner.id}", headers=auth).json()
    latest = body["late_payment_reason"]
    assert (latest["id"], latest["category"], latest["words"]) == (
        new.id,
        "insolvency",
        "ma société est en redressement",
    )
    assert latest["channel"] == "sms" and latest["conversation_id"] == conv.id
    assert latest["created_at"] and latest["identity_verified"] is True
    assert [r["category"] for r in body["late_payment_reasons"]] == ["insolvency", "job_loss"]
    assert body["late_payment_reasons"][1]["id"] == old.id


def test_debtor_without_a_reason_says_so(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    owner = make_debtor(db)
    body = client.get(f"/api/v1/debtors/{owner.id}", headers=auth).json()
    assert body["late_payment_reason"] is None and body["late_payment_reasons"] == []


def test_list_filters_by_debtor_and_category(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    one, two = make_debtor(db), make_debtor(db)
    c1, c2 = make_conversation(db, one), make_conversation(db, two)
    a = _state(db, one, c1, "I lost my job")
    b = _state(db, two, c2, "I'm in hospital")

    def listed(**params: object) -> list[int]:
        response = client.get("/api/v1/late-payment-reasons", params=params, headers=auth)
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["items"]]

    assert listed() == [a.id, b.id]
    assert listed(debtor_id=two.id) == [b.id]
    assert listed(category="job_loss") == [a.id]


def test_bad_filters_are_a_clear_422_and_the_list_needs_a_token(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    response = client.get(
        "/api/v1/late-payment-reasons", params={"category": "bored"}, headers=auth
    )
    assert response.status_code == 422 and "category" in response.text
    response = client.get("/api/v1/late-payment-reasons", params={"debtor_id": "x"}, headers=auth)
    assert response.status_code == 422
    assert client.get("/api/v1/late-payment-reasons").status_code == 401
    assert db.scalar(select(func.count()).select_from(LatePaymentReason)) == 0
