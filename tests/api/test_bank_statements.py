"""`POST /api/v1/payments/bank-statements`: raw or multipart, 201 with the report, and a clear
4xx problem document (nothing stored) for every bad file."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance.bank_statements import rf
from relance.bank_statements.models import BankStatement, BankStatementEntry
from tests.factories import make_debtor, make_invoice
from tests.relance.bank_statements.builders import Credit, camt053, mt940
from tests.support.payment_fixtures import gateway  # noqa: F401  (fixture)

URL = "/api/v1/payments/bank-statements"
XML = {"Content-Type": "application/xml"}


@pytest.mark.usefixtures("gateway")
def test_raw_camt053_is_reconciled(client: TestClient, db: Session, auth) -> None:  # type: ignore[no-untyped-def]
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 4000, due=date(2026, 10, 1))
    data = camt053(
        [
            Credit("40.00", ref="API-1", structured=rf.for_invoice(invoice.id)),
            Credit("3.00", ref="API-2", payer="Nobody"),
        ],
        statement_id="API-S1",
    )
    response = client.post(URL, content=data, headers={**auth, **XML})
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["credits"], body["matched"], body["review"]) == (2, 1, 1)
    assert body["paid_invoice_ids"] == [invoice.id]
    waiting = client.get("/api/v1/payments/bank-lines", headers=auth).json()
    assert [line["amount_minor"] for line in waiting] == [300]

    again = client.post(URL, content=data, headers={**auth, **XML})
    assert again.status_code == 409 and again.json()["code"] == "duplicate_statement"


@pytest.mark.usefixtures("gateway")
def test_multipart_mt940_upload(client: TestClient, db: Session, auth) -> None:  # type: ignore[no-untyped-def]
    data = mt940([Credit("1.00", ref="MP1", payer="Nobody")], reference="API-MT")
    response = client.post(URL, files={"file": ("s.sta", data)}, headers=auth)
    assert response.status_code == 201, response.text
    assert response.json()["review"] == 1


def test_bad_files_answer_4xx_and_store_nothing(client: TestClient, db: Session, auth) -> None:  # type: ignore[no-untyped-def]
    wrong_currency = camt053([Credit("1.00"), Credit("2.00", currency="USD")], statement_id="X")
    response = client.post(URL, content=wrong_currency, headers={**auth, **XML})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_statement"
    assert body["errors"] == [{"line": 2, "error": "USD amount on a EUR account (statement X)"}]

    xxe = b"<?xml version='1.0'?><!DOCTYPE d [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><d>&e;</d>"
    response = client.post(URL, content=xxe, headers={**auth, **XML})
    assert response.status_code == 422 and "root:" not in response.text

    assert client.post(URL, content=b"", headers={**auth, **XML}).status_code == 400
    assert client.post(URL, json={"a": 1}, headers=auth).status_code == 415
    assert client.post(URL, content=wrong_currency, headers=XML).status_code == 401
    assert db.scalar(select(func.count()).select_from(BankStatementEntry)) == 0


def test_mt940_whose_balances_do_not_add_up_is_422_naming_the_statement(
    client: TestClient, db: Session, auth
) -> None:  # type: ignore[no-untyped-def]
    good = mt940([Credit("1.00", ref="BAL-1", payer="Nobody")], reference="API-B1", number="1/1")
    short = mt940(
        [Credit("2.00", ref="BAL-2", payer="Nobody")],
        reference="API-B2",
        number="2/1",
        opening="1.00",
        closing="5.00",
    )
    response = client.post(URL, files={"file": ("s.sta", good + b"\r\n" + short)}, headers=auth)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_statement"
    [error] = body["errors"]
    assert error["line"] == 0
    assert error["error"].startswith("statement API-B2/2/1: the opening balance (:60F:) 1.00 EUR")
    assert "gives 3.00 EUR, but the closing balance (:62F:) is 5.00 EUR" in error["error"]
    assert "nothing was imported" in body["detail"]
    assert db.scalar(select(func.count()).select_from(BankStatement)) == 0


def test_size_limit(client: TestClient, auth, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from relance.settings import get_settings

    monkeypatch.setenv("BANK_STATEMENT_MAX_BYTES", "2048")
    get_settings.cache_clear()
    big = camt053([Credit("1.00", ref=f"B{i}") for i in range(20)], statement_id="BIG")
    response = client.post(URL, content=big, headers={**auth, **XML})
    assert response.status_code == 400
    assert response.json()["code"] == "statement_too_large"


@pytest.mark.parametrize(
    "body",
    [
        b"\x00\xff\xfe garbage",
        b"<",
        b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.02'><BkToCstmrStmt><Stmt>"
        b"<Ntry/></Stmt></BkToCstmrStmt></Document>",
        b":20:REF\r\n:25:NOTANIBAN\r\n:28C:1\r\n:60F:C260101EUR0,00\r\n:62F:C260101EUR0,00\r\n-",
        b":20:REF\r\n:25:FR7630006000011234567890189\r\n:61:2611202011C1,00NTRFNONREF\r\n-",
        b"<a>" * 5000,
        mt940([Credit("1.00", payer="Nobody", currency="XYZ")], currency="XYZ"),
        mt940([Credit("1.00", payer="Nobody")]).replace(b":62F:", b":64:"),
        b"{1:F01BANKFRPPAXXX0001000001}{2:O940}{4:\r\n:20:X\r\n-}{5:{CHK:1}}",
        b"{1:F01BANKFRPPAXXX0001000001}{4:\r\n:20:",
        mt940([Credit("1.00", payer="Nobody")]) + b"\r\n:20:NEXT\r\n:25:\r\n-",
    ],
    ids=[
        "binary",
        "truncated",
        "empty-entry",
        "mt940-bad-account",
        "mt940-no-balance",
        "deep",
        "mt940-unknown-currency",
        "mt940-no-closing-balance",
        "swift-empty-statement",
        "swift-cut",
        "mt940-second-empty",
    ],
)
def test_hostile_bodies_are_4xx(client: TestClient, db: Session, auth, body: bytes) -> None:  # type: ignore[no-untyped-def]
    response = client.post(URL, content=body, headers={**auth, "Content-Type": "text/plain"})
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["detail"]
    assert db.scalar(select(func.count()).select_from(BankStatement)) == 0
