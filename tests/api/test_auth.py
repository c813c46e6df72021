"""Bearer-token authentication on every /api/v1 route."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.auth.tokens import create_token, revoke_token
from relance.db.models import ApiToken


def test_valid_token_is_accepted(client: TestClient, auth: dict[str, str]) -> None:
    response = client.get("/api/v1/debtors", headers=auth)
    assert response.status_code == 200
    assert response.json()["items"] == []


def test_missing_token_is_401_with_a_bearer_challenge(client: TestClient) -> None:
    response = client.get("/api/v1/debtors")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"] == "missing_token"


def test_other_schemes_are_refused(client: TestClient, token: str) -> None:
    response = client.get("/api/v1/debtors", headers={"Authorization": f"Basic {token}"})
    assert response.status_code == 401
    assert "Bearer" in response.headers["www-authenticate"]


def test_unknown_token_is_401_invalid_token(client: TestClient) -> None:
    response = client.get("/api/v1/debtors", headers={"Authorization": "Bearer rlc_forged"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_revoked_token_is_refused(client: TestClient, db: Session) -> None:
    row, plaintext = create_token(db, "old-erp")
    headers = {"Authorization": f"Bearer {plaintext}"}
    assert client.get("/api/v1/debtors", headers=headers).status_code == 200
    assert revoke_token(db, row.id)
    db.flush()
    response = client.get("/api/v1/debtors", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_only_the_hash_is_stored(db: Session, token: str) -> None:
    hashes = db.scalars(select(ApiToken.token_hash)).all()
    assert token not in hashes
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes)


def test_absurd_authorization_headers_are_401_not_500(client: TestClient) -> None:
    for value in (
        "Bearer " + "x" * 10_000,
        "Bearer rlc_' OR '1'='1",
        "Bearer rlc_\u00e9\u00e8",  # latin-1 bytes in a header
        "Bearer",
        "Bearer ",
    ):
        response = client.get("/api/v1/debtors", headers={"Authorization": value.encode("latin-1")})
        assert response.status_code == 401, value


def test_every_api_route_requires_a_token(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    operations = [
        (method, re.sub(r"\{[^}]+\}", "1", path))
        for path, item in paths.items()
        if path.startswith("/api/v1/")
        for method in item
    ]
    assert len(operations) >= 12
    for method, path in operations:
        response = client.request(method.upper(), path)
        assert response.status_code == 401, (method, path)


def test_read_only_token_reads_but_cannot_change_anything(client: TestClient, db: Session) -> None:
    from relance.db.models import Debtor, Invoice

    _row, plaintext = create_token(db, "bi-dashboard", read_only=True)
    headers = {"Authorization": f"Bearer {plaintext}"}
    assert client.get("/api/v1/debtors", headers=headers).status_code == 200
    assert client.get("/api/v1/invoices", headers=headers).status_code == 200
    row = {
        "customer_number": "C-RO",
        "name": "Zoé Martin",
        "phone": "+33612345678",
        "invoice_number": "F-RO",
        "amount_minor": 12_345,
        "currency": "EUR",
        "issue_date": "2026-11-01",
        "due_date": "2026-12-01",
    }
    response = client.post("/api/v1/invoices/import", json={"rows": [row]}, headers=headers)
    assert response.status_code == 403
    assert response.json()["error"] == "read_only_token"
    assert db.scalars(select(Debtor)).all() == [] and db.scalars(select(Invoice)).all() == []
    _full, full_plaintext = create_token(db, "erp")
    accepted = client.post(
        "/api/v1/invoices/import",
        json={"rows": [row]},
        headers={"Authorization": f"Bearer {full_plaintext}"},
    )
    assert accepted.status_code == 201, accepted.text
