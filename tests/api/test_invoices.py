"""GET /invoices and POST /invoices/import (JSON rows, CSV upload, raw CSV): all-or-nothing."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance.db.models import AuditEvent, Contact, Debtor, Invoice
from tests.factories import make_debtor, make_invoice

IMPORT = "/api/v1/invoices/import"
HEADER = "customer_number,name,phone,invoice_number,amount,currency,issue_date,due_date"


def row(n: int = 1, **kw: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "customer_number": f"C-{n:03d}",
        "name": f"Client {n}",
        "phone": f"+336399800{n:02d}",
        "invoice_number": f"F-{n:04d}",
        "amount_minor": 12_345,
        "currency": "EUR",
        "issue_date": "2026-10-01",
        "due_date": "2026-11-01",
    }
    values.update(kw)
    return values


def count(db: Session, model: type) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


def nothing_stored(db: Session) -> bool:
    return count(db, Debtor) == 0 and count(db, Invoice) == 0 and count(db, Contact) == 0


# ---------------------------------------------------------------- list


def test_list_filters(client: TestClient, db: Session, auth: dict[str, str]) -> None:
    a, b = make_debtor(db), make_debtor(db)
    early = make_invoice(db, a, number="F-EARLY", due=date(2026, 9, 1))
    late = make_invoice(db, a, number="F-LATE", due=date(2026, 12, 1), status="paid")
    usd = make_invoice(db, b, 10_000, number="US-1", currency="USD", due=date(2026, 11, 1))

    def listed(**params: Any) -> list[int]:
        response = client.get("/api/v1/invoices", params=params, headers=auth)
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["items"]]

    assert listed() == [early.id, late.id, usd.id]
    assert listed(debtor_id=a.id) == [early.id, late.id]
    assert listed(status="paid") == [late.id]
    assert listed(currency="USD") == [usd.id]
    assert listed(due_before="2026-10-01") == [early.id]
    assert listed(due_after="2026-11-15") == [late.id]
    assert listed(q="f-") == [early.id, late.id]
    item = client.get("/api/v1/invoices", params={"q": "US-1"}, headers=auth).json()["items"][0]
    assert item["amount"] == {"amount_minor": 10_000, "currency": "USD"}
    assert (
        client.get("/api/v1/invoices", params={"currency": "usd"}, headers=auth).status_code == 422
    )


# ---------------------------------------------------------------- JSON import


def test_json_import_stores_rows_and_audits_the_token(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    rows = [row(1), row(2, amount_minor=500, currency="JPY"), row(1, invoice_number="F-0009")]
    response = client.post(IMPORT, json={"rows": rows}, headers=auth)
    assert response.status_code == 201, response.text
    assert response.json() == {
        "rows": 3,
        "debtors_created": 2,
        "invoices_created": 3,
        "invoices_unchanged": 0,
        "warnings": [],
    }
    amounts = dict(db.execute(select(Invoice.number, Invoice.amount_minor)).all())
    assert amounts == {"F-0001": 12_345, "F-0002": 500, "F-0009": 12_345}
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "portfolio.imported")).one()
    assert event.actor == "api:erp"
    again = client.post(IMPORT, json={"rows": rows}, headers=auth)
    assert again.status_code == 201
    assert again.json()["invoices_unchanged"] == 3


def test_unicode_and_sql_looking_text_are_stored_verbatim(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    name = "Zoë Ñandú 🎉 Robert'); DROP TABLE debtors;--"
    response = client.post(IMPORT, json={"rows": [row(1, name=name)]}, headers=auth)
    assert response.status_code == 201, response.text
    assert db.scalars(select(Debtor.name)).one() == name


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("phone", "0639980001"),  # national format, not E.164
        ("phone", "+3363998"),  # too short to be a real number
        ("phone", "+33 6 39 98 00 01"),
        ("whatsapp", "not a phone"),
        ("currency", "EURO"),
        ("currency", "eur"),
        ("currency", "XYZ"),  # three letters, not ISO 4217
        ("amount_minor", "12345"),  # strings are not integers here
        ("amount_minor", 12.5),
        ("amount_minor", -1),
        ("amount_minor", 10**15),  # beyond the importer's bound
        ("paid_minor", -5),
        ("name", "x" * 201),
        ("name", "nul\x00byte"),
        ("timezone", "Mars/Olympus"),
        ("issue_date", "01/10/2026"),
        ("segment", "vip"),
        ("unexpected", "field"),
    ],
)
def test_json_rows_are_validated_strictly(
    client: TestClient, db: Session, auth: dict[str, str], field: str, value: Any
) -> None:
    response = client.post(IMPORT, json={"rows": [row(1), row(2, **{field: value})]}, headers=auth)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_rows"
    assert [r["row"] for r in body["rows"]] == [2]
    assert any(field in problem for problem in body["rows"][0]["problems"])
    assert nothing_stored(db)


def test_rows_the_importer_rejects_are_reported_with_row_numbers(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    rows = [
        row(1),
        row(2, due_date="2026-09-01"),  # before the issue date
        row(3, invoice_number="F-0001"),  # repeats row 1's invoice
        row(4),
    ]
    response = client.post(IMPORT, json={"rows": rows}, headers=auth)
    assert response.status_code == 422
    body = response.json()
    assert [(r["row"], r["line"]) for r in body["rows"]] == [(2, None), (3, None)]
    assert "due_date" in body["rows"][0]["problems"][0]
    assert nothing_stored(db)


@pytest.mark.parametrize(
    "payload", [{"rows": []}, {"rows": "nope"}, {}, [], {"rows": [row(1)], "extra": 1}]
)
def test_malformed_json_bodies_are_422(
    client: TestClient, db: Session, auth: dict[str, str], payload: Any
) -> None:
    response = client.post(IMPORT, json=payload, headers=auth)
    assert response.status_code == 422
    assert nothing_stored(db)


def test_broken_json_is_422(client: TestClient, auth: dict[str, str]) -> None:
    headers = {**auth, "Content-Type": "application/json"}
    response = client.post(IMPORT, content=b'{"rows": [', headers=headers)
    assert response.status_code == 422


# ---------------------------------------------------------------- CSV import


def csv_text(*lines: str) -> str:
    return "\n".join((HEADER, *lines)) + "\n"


GOOD = "C-1,Sophie Martin,+33639980001,F-1,3845.63,EUR,2026-11-03,2026-12-03"


def test_csv_upload_imports(client: TestClient, db: Session, auth: dict[str, str]) -> None:
    body = csv_text(GOOD, 'C-2,John Smith,+447700900123,F-2,"1 234,50",GBP,2026-11-03,2026-12-03')
    files = {"file": ("portfolio.csv", ("\ufeff" + body).encode(), "text/csv")}
    response = client.post(IMPORT, files=files, headers=auth)
    assert response.status_code == 201, response.text
    assert response.json()["invoices_created"] == 2
    amounts = dict(db.execute(select(Invoice.number, Invoice.amount_minor)).all())
    assert amounts == {"F-1": 384_563, "F-2": 123_450}


def test_raw_csv_body_imports(client: TestClient, db: Session, auth: dict[str, str]) -> None:
    headers = {**auth, "Content-Type": "text/csv; charset=utf-8"}
    response = client.post(IMPORT, content=csv_text(GOOD).encode(), headers=headers)
    assert response.status_code == 201, response.text
    assert count(db, Invoice) == 1


@pytest.mark.parametrize(
    ("bad_line", "needle"),
    [
        ("C-2,Bad Phone,12,F-2,10.00,EUR,2026-11-03,2026-12-03", "phone"),
        ("C-2," + "N" * 201 + ",+33639980002,F-2,10.00,EUR,2026-11-03,2026-12-03", "name"),
        ("C" * 65 + ",Long,+33639980002,F-2,10.00,EUR,2026-11-03,2026-12-03", "customer_number"),
        ("C-2,Nul\x00,+33639980002,F-2,10.00,EUR,2026-11-03,2026-12-03", "control"),
        ("C-2,NaN,+33639980002,F-2,NaN,EUR,2026-11-03,2026-12-03", "amount"),
        ("C-2,Inf,+33639980002,F-2,Infinity,EUR,2026-11-03,2026-12-03", "amount"),
        ("C-2,Big,+33639980002,F-2,1e30,EUR,2026-11-03,2026-12-03", "amount"),
        ("C-2,Huge,+33639980002,F-2,99999999999999.00,EUR,2026-11-03,2026-12-03", "amount"),
        ("C-2,Extra,+33639980002,F-2,10.00,EUR,2026-11-03,2026-12-03,surplus", "more fields"),
    ],
)
def test_bad_csv_rows_are_reported_by_line_and_nothing_is_stored(
    client: TestClient, db: Session, auth: dict[str, str], bad_line: str, needle: str
) -> None:
    files = {"file": ("p.csv", csv_text(GOOD, bad_line).encode(), "text/csv")}
    response = client.post(IMPORT, files=files, headers=auth)
    assert response.status_code == 422, response.text
    [problem] = response.json()["rows"]
    assert (problem["row"], problem["line"]) == (2, 3)
    assert any(needle in p for p in problem["problems"]), problem
    assert nothing_stored(db)


def test_csv_country_wider_than_the_column_is_refused(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    text = HEADER + ",country\n" + GOOD + ",FRA\n"
    response = client.post(IMPORT, files={"file": ("p.csv", text.encode())}, headers=auth)
    assert response.status_code == 422
    assert nothing_stored(db)


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"name,phone\nA,+33639980001\n", "missing_columns"),
        (HEADER.encode() + b"\n", "empty_import"),
    ],
)
def test_unusable_csv_files_are_422(
    client: TestClient, auth: dict[str, str], content: bytes, code: str
) -> None:
    response = client.post(IMPORT, files={"file": ("p.csv", content)}, headers=auth)
    assert response.status_code == 422
    assert response.json()["error"] == code


def test_non_utf8_csv_is_400(client: TestClient, db: Session, auth: dict[str, str]) -> None:
    latin1 = csv_text(GOOD.replace("Sophie", "Zoé")).encode("latin-1")
    response = client.post(IMPORT, files={"file": ("p.csv", latin1)}, headers=auth)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_encoding"
    assert nothing_stored(db)


def test_multipart_without_a_file_is_422(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post(IMPORT, data={"other": "x"}, files={"x": ("a", b"b")}, headers=auth)
    assert response.status_code == 422
    assert response.json()["error"] == "file_required"


def test_unknown_content_type_is_415(client: TestClient, auth: dict[str, str]) -> None:
    headers = {**auth, "Content-Type": "application/xml"}
    response = client.post(IMPORT, content=b"<rows/>", headers=headers)
    assert response.status_code == 415


def test_oversized_import_is_413_and_nothing_is_stored(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    rows = [row(n % 90 + 1, invoice_number=f"F-{n:06d}", name="N" * 150) for n in range(2000)]
    response = client.post(IMPORT, json={"rows": rows}, headers=auth)
    assert response.status_code == 413
    assert nothing_stored(db)


def test_oversized_body_without_content_length_is_413(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    def chunks():  # type: ignore[no-untyped-def]  # streamed: no Content-Length header
        yield HEADER.encode() + b"\n"
        for n in range(6000):
            yield f"C-{n},Name {n},+33639980001,F-{n},10.00,EUR,2026-11-03,2026-12-03\n".encode()

    headers = {**auth, "Content-Type": "text/csv"}
    response = client.post(IMPORT, content=chunks(), headers=headers)
    assert response.status_code == 413
    assert nothing_stored(db)
