"""POST /invoices/import-einvoices and GET /accounting/export."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance.db.models import Invoice
from tests.relance.einvoice.samples import Sample, facturx, ubl

URL = "/api/v1/invoices/import-einvoices"


@pytest.mark.parametrize("profile", ["en16931", "extended"])
def test_upload_imports_each_file_and_reports_per_file(
    client: TestClient, db: Session, auth: dict[str, str], profile: str
) -> None:
    good = ("good.pdf", facturx(Sample(), profile), "application/pdf")
    bad = ("bad.xml", ubl(Sample(number="B-1", currency="EURO")), "application/xml")
    answer = client.post(URL, headers=auth, files=[("file", good), ("file", bad)])
    assert answer.status_code == 422
    body = answer.json()
    assert (body["created"], body["rejected"]) == (1, 1)
    assert body["files"][0]["profile"] == profile
    rejected = body["files"][1]
    assert rejected["name"] == "bad.xml" and rejected["status"] == "rejected"
    assert rejected["problems"][0]["field"] == "invoice currency (BT-5)"
    assert db.scalar(select(func.count()).select_from(Invoice)) == 1
    again = client.post(URL, headers=auth, files=[("file", good)])
    assert again.status_code == 201 and again.json()["files"][0]["status"] == "unchanged"


def test_too_large_an_upload_is_413_with_the_limit_named(
    client: TestClient, auth: dict[str, str]
) -> None:
    answer = client.post(
        URL,
        headers=auth,
        files=[("file", ("big.xml", b"<a>" + b"x" * (21 * 1024 * 1024), "text/xml"))],
    )
    assert answer.status_code == 413
    assert "at most 20971520 bytes" in answer.json()["message"]


def test_not_multipart_is_400(client: TestClient, auth: dict[str, str]) -> None:
    answer = client.post(URL, headers=auth, content=b"<a/>")
    assert answer.status_code == 400
    assert "multipart" in answer.json()["detail"]


def test_requires_a_token(client: TestClient) -> None:
    assert client.post(URL, files=[("file", ("a.xml", b"<a/>", "text/xml"))]).status_code == 401


def test_instalments_not_adding_up_are_a_422_naming_the_sums_and_nothing_is_stored(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    wrong = Sample(number="F-I", instalments=(("2026-10-31", "50.00"), ("2026-11-30", "50.00")))
    answer = client.post(URL, headers=auth, files=[("file", ("i.xml", ubl(wrong), "text/xml"))])
    assert answer.status_code == 422
    [problem] = answer.json()["files"][0]["problems"]
    assert problem["field"] == "instalments (payment terms BT-20, due dates BT-9)"
    assert "add up to 100.00 EUR, but the amount due is 120.00 EUR" in problem["message"]
    assert db.scalar(select(func.count()).select_from(Invoice)) == 0
    right = wrong.but(instalments=(("2026-10-31", "70.00"), ("2026-11-30", "50.00")))
    created = client.post(URL, headers=auth, files=[("file", ("i.xml", ubl(right), "text/xml"))])
    assert created.status_code == 201
    assert created.json()["files"][0]["warnings"] == [
        "payable in 2 instalments: 70.00 EUR on 2026-10-31; 50.00 EUR on 2026-11-30"
    ]
    assert db.scalar(select(func.count()).select_from(Invoice)) == 2
