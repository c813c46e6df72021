"""GET /debtors (search, filters, derived status, balances) and GET /debtors/{id} (360° view)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance.db.models import Debtor
from tests.api import factories as f


def ids(response) -> list[int]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_pages_are_stable_and_say_where_the_next_starts(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    made = [f.debtor(db).id for _ in range(5)]
    first = client.get("/api/v1/debtors", params={"limit": 2}, headers=auth).json()
    assert [d["id"] for d in first["items"]] == made[:2]
    assert (first["total"], first["limit"], first["offset"], first["next_offset"]) == (5, 2, 0, 2)
    last = client.get("/api/v1/debtors", params={"limit": 2, "offset": 4}, headers=auth).json()
    assert [d["id"] for d in last["items"]] == made[4:]
    assert last["next_offset"] is None


def test_search_by_name_company_customer_number_and_exact_phone(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    martin = f.debtor(db, name="Sophie Martin", company="Boulangerie Martin SARL")
    smith = f.debtor(db, name="John Smith", customer_number="C-EN-042")
    f.contact(db, smith, "+447700900123")
    f.debtor(db, name="Zoë Durand")

    def search(q: str) -> list[int]:
        return ids(client.get("/api/v1/debtors", params={"q": q}, headers=auth))

    assert search("boulangerie") == [martin.id]
    assert search("c-en-04") == [smith.id]
    assert search("+447700900123") == [smith.id]
    assert len(search("Zoë")) == 1


def test_like_wildcards_and_sql_in_search_are_plain_text(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    f.debtor(db, name="Plain Name")
    percent = f.debtor(db, name="100% Bio")
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
    settled = f.debtor(db)
    f.invoice(db, settled, paid_minor=10_000, status="paid")
    owing = f.debtor(db)
    f.invoice(db, owing)
    disputed = f.debtor(db)
    f.dispute(db, disputed, invoice_id=f.invoice(db, disputed).id)
    in_plan = f.debtor(db)
    f.invoice(db, in_plan)
    f.plan(db, in_plan)
    promised = f.debtor(db)
    f.invoice(db, promised)
    f.promise(db, promised)
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
    b2b = f.debtor(db, segment="b2b")
    f.debtor(db, segment="consumer")
    assert ids(client.get("/api/v1/debtors", params={"segment": "b2b"}, headers=auth)) == [b2b.id]
    bad = client.get("/api/v1/debtors", params={"segment": "vip"}, headers=auth)
    assert bad.status_code == 422


def test_balances_are_money_per_currency(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    debtor = f.debtor(db)
    f.invoice(db, debtor, amount_minor=10_000, paid_minor=2_500)
    f.invoice(db, debtor, amount_minor=5_000)
    f.invoice(db, debtor, amount_minor=7_000, paid_minor=7_000, status="paid")
    f.invoice(db, debtor, amount_minor=300, currency="USD")
    f.invoice(db, debtor, amount_minor=900, status="cancelled")
    item = client.get("/api/v1/debtors", headers=auth).json()["items"][0]
    assert item["balances"] == [
        {"amount_minor": 12_500, "currency": "EUR"},
        {"amount_minor": 300, "currency": "USD"},
    ]


def test_debtor_360_view(client: TestClient, db: Session, auth: dict[str, str]) -> None:
    debtor = f.debtor(db, name="Sophie Martin", email="s@example.fr", postcode="75011")
    f.contact(db, debtor, "+33639980001")
    f.contact(db, debtor, "+33639980001", channel="voice", consent=False)
    f.contact(
        db,
        debtor,
        "whatsapp:+33639980001",
        channel="whatsapp",
        opted_out_at=datetime(2026, 11, 2, tzinfo=UTC),
    )
    inv = f.invoice(db, debtor, amount_minor=38_456, paid_minor=456)
    f.promise(db, debtor, amount_minor=38_000)
    f.dispute(db, debtor, invoice_id=inv.id, status="rejected")
    f.plan(db, debtor, installments=3, total_minor=38_000, status="broken")
    f.letter(db, debtor)
    conv = f.conversation(db, debtor)
    other = f.debtor(db)
    f.invoice(db, other)

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
