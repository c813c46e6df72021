"""GET /debtors (search, filters, derived status, balances) and GET /debtors/{id} (360° view)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance.db.models import Debtor
from tests.factories import (
    make_contact,
    make_conversation,
    make_debtor,
    make_dispute,
    make_invoice,
    make_letter,
    make_plan,
    make_promise,
)


def ids(response) -> list[int]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_pages_are_stable_and_say_where_the_next_starts(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    made = [make_debtor(db).id for _ in range(5)]
    first = client.get("/api/v1/debtors", params={"limit": 2}, headers=auth).json()
    assert [d["id"] for d in first["items"]] == made[:2]
    assert (first["total"], first["limit"], first["offset"], first["next_offset"]) == (5, 2, 0, 2)
    last = client.get("/api/v1/debtors", params={"limit": 2, "offset": 4}, headers=auth).json()
    assert [d["id"] for d in last["items"]] == made[4:]
    assert last["next_offset"] is None


def test_search_by_name_company_customer_number_and_exact_phone(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    martin = make_debtor(db, name="Sophie Martin", company="Boulangerie Martin SARL")
    smith = make_debtor(db, name="John Smith", customer_number="C-EN-042")
    make_contact(db, smith, address="+447700900123")
    make_debtor(db, name="Zoë Durand")

    def search(q: str) -> list[int]:
        return ids(client.get("/api/v1/debtors", params={"q": q}, headers=auth))

    assert search("boulangerie") == [martin.id]
    assert search("c-en-04") == [smith.id]
    assert search("+447700900123") == [smith.id]
    assert len(search("Zoë")) == 1


def test_like_wildcards_and_sql_in_search_are_plain_text(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    make_debtor(db, name="Plain Name")
    percent = make_debtor(db, name="100% Bio")
    assert ids(client.get("/api/v1/debtors", params={"q": "%"}, headers=auth)) == [percent.id]
    assert ids(client.get("/api/v1/debtors", params={"q": "_"}, headers=auth)) == []
    sql = "'; DROP TABLE debtors; --"
    assert ids(client.get("/api/v1/debtors", params={"q": sql}, headers=auth)) == []
    assert db.scalar(select(func.count()).select_from(Debtor)) == 2


def test_control_characters_in_search_are_422(client: TestClient, auth: dict[str, str]) -> None:
    response = client.get("/api/v1/debtors", params={"q": "a\x00b"}, headers=auth)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_status_is_derived_and_filterable(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    settled = make_debtor(db)
    make_invoice(db, settled, amount_minor=10_000, paid_minor=10_000, status="paid")
    owing = make_debtor(db)
    make_invoice(db, owing)
    disputed = make_debtor(db)
    make_dispute(db, disputed, invoice_id=make_invoice(db, disputed).id)
    in_plan = make_debtor(db)
    make_invoice(db, in_plan)
    make_plan(db, in_plan)
    promised = make_debtor(db)
    make_invoice(db, promised)
    make_promise(db, promised)
    expected = {
        "settled": settled.id,
        "owing": owing.id,
        "disputed": disputed.id,
        "in_plan": in_plan.id,
        "promised": promised.id,
    }
    listed = client.get("/api/v1/debtors", headers=auth).json()["items"]
    assert {d["id"]: d["status"] for d in listed} == {v: k for k, v in expected.items()}
    for status, debtor_id in expected.items():
        found = ids(client.get("/api/v1/debtors", params={"status": status}, headers=auth))
        assert found == [debtor_id], status


def test_segment_filter_and_bad_enum(client: TestClient, db: Session, auth: dict[str, str]) -> None:
    b2b = make_debtor(db, segment="b2b")
    make_debtor(db, segment="consumer")
    assert ids(client.get("/api/v1/debtors", params={"segment": "b2b"}, headers=auth)) == [b2b.id]
    bad = client.get("/api/v1/debtors", params={"segment": "vip"}, headers=auth)
    assert bad.status_code == 422


def test_balances_are_money_per_currency(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    debtor = make_debtor(db)
    make_invoice(db, debtor, amount_minor=10_000, paid_minor=2_500)
    make_invoice(db, debtor, amount_minor=5_000)
    make_invoice(db, debtor, amount_minor=7_000, paid_minor=7_000, status="paid")
    make_invoice(db, debtor, amount_minor=300, currency="USD")
    make_invoice(db, debtor, amount_minor=900, status="cancelled")
    item = client.get("/api/v1/debtors", headers=auth).json()["items"][0]
    assert item["balances"] == [
        {"amount_minor": 12_500, "currency": "EUR"},
        {"amount_minor": 300, "currency": "USD"},
    ]


def test_debtor_360_view(client: TestClient, db: Session, auth: dict[str, str]) -> None:
    debtor = make_debtor(db, name="Sophie Martin", email="s@example.fr", postcode="75011")
    make_contact(db, debtor, address="+33639980001")
    make_contact(db, debtor, address="+33639980001", channel="voice", consent=False)
    make_contact(
        db,
        debtor,
        address="whatsapp:+33639980001",
        channel="whatsapp",
        opted_out_at=datetime(2026, 11, 2, tzinfo=UTC),
    )
    inv = make_invoice(db, debtor, amount_minor=38_456, paid_minor=456)
    make_promise(db, debtor, amount_minor=38_000)
    make_dispute(db, debtor, invoice_id=inv.id, status="rejected")
    make_plan(db, debtor, [12_666] * 3, total_minor=38_000, status="broken")
    make_letter(db, debtor)
    conv = make_conversation(db, debtor)
    other = make_debtor(db)
    make_invoice(db, other)

    body = client.get(f"/api/v1/debtors/{debtor.id}", headers=auth).json()
    assert body["name"] == "Sophie Martin" and body["postcode"] == "75011"
    assert body["status"] == "promised"
    assert body["balances"] == [{"amount_minor": 38_000, "currency": "EUR"}]
    contacts = {(c["channel"], c["reachable"], c["consent"]) for c in body["contacts"]}
    assert contacts == {("sms", True, True), ("voice", False, False), ("whatsapp", False, True)}
    assert body["contacts"][2]["opted_out_at"].startswith("2026-11-02")
    [invoice] = body["invoices"]
    assert invoice["amount"] == {"amount_minor": 38_456, "currency": "EUR"}
    assert invoice["balance"] == {"amount_minor": 38_000, "currency": "EUR"}
    assert body["promises"][0]["amount"] == {"amount_minor": 38_000, "currency": "EUR"}
    assert body["disputes"][0]["status"] == "rejected"
    [plan] = body["payment_plans"]
    assert [i["seq"] for i in plan["installments"]] == [1, 2, 3]
    assert plan["installments"][0]["amount"] == {"amount_minor": 12_666, "currency": "EUR"}
    assert body["letters"][0]["total"] == {"amount_minor": 14_120, "currency": "EUR"}
    assert body["conversation"]["id"] == conv.id


@pytest.mark.parametrize("debtor_id", ["0", "-1", "2147483648", "99999999999999999999", "abc"])
def test_out_of_range_ids_are_422(client: TestClient, auth: dict[str, str], debtor_id: str) -> None:
    assert client.get(f"/api/v1/debtors/{debtor_id}", headers=auth).status_code == 422


def test_unknown_debtor_is_404(client: TestClient, auth: dict[str, str]) -> None:
    response = client.get("/api/v1/debtors/2147483647", headers=auth)
    assert response.status_code == 404
    assert response.json()["error"] == "debtor_not_found"
