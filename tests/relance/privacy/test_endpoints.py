"""Console and API actions: admin only (a collector gets 403), confirmed, audited."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.auth.tokens import create_token
from relance.db.models import AuditEvent, Debtor
from tests.console.conftest import csrf_of, login
from tests.factories import make_user
from tests.relance.privacy.helpers import occurrences, seed_debtor


def _token(db: Session, role: str | None) -> dict[str, str]:
    owner = make_user(db, role) if role else None
    _row, plaintext = create_token(db, f"privacy-{role}", user=owner)
    return {"Authorization": f"Bearer {plaintext}"}


def _events(db: Session, action: str) -> list[AuditEvent]:
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action)))


# --- API ------------------------------------------------------------------------------------


def test_api_export_for_an_admin_token(client: TestClient, db: Session, tmp_path: Path) -> None:
    seeded = seed_debtor(db, tmp_path)
    answer = client.get(f"/api/v1/debtors/{seeded.debtor.id}/export", headers=_token(db, "admin"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["tables"]["debtors"][0]["name"] == seeded.name
    assert seeded.text in [m["body"] for m in body["tables"]["messages"]]
    assert _events(db, "privacy.exported")[0].details["form"] == "json"


@pytest.mark.parametrize("role", ["collector", None])
def test_api_refuses_collector_and_service_tokens(
    client: TestClient, db: Session, tmp_path: Path, role: str | None
) -> None:
    seeded = seed_debtor(db, tmp_path)
    headers = _token(db, role)
    answer = client.get(f"/api/v1/debtors/{seeded.debtor.id}/export", headers=headers)
    assert answer.status_code == 403 and answer.json()["error"] == "admin_required"
    answer = client.post(
        f"/api/v1/debtors/{seeded.debtor.id}/erase",
        headers=headers,
        json={"reason": "request", "confirm_customer_number": seeded.debtor.customer_number},
    )
    assert answer.status_code == 403
    assert _events(db, "privacy.exported") == [] and _events(db, "privacy.erased") == []


def test_api_erase_confirms_refuses_then_forces(
    client: TestClient, db: Session, tmp_path: Path
) -> None:
    seeded = seed_debtor(db, tmp_path, settled=False)
    headers = _token(db, "admin")
    url = f"/api/v1/debtors/{seeded.debtor.id}/erase"
    ref = seeded.debtor.customer_number
    wrong = client.post(
        url, headers=headers, json={"reason": "request", "confirm_customer_number": "X"}
    )
    assert wrong.status_code == 422 and wrong.json()["error"] == "confirmation_mismatch"
    refused = client.post(
        url, headers=headers, json={"reason": "request", "confirm_customer_number": ref}
    )
    assert refused.status_code == 409 and refused.json()["code"] == "erasure_refused"
    assert refused.headers["content-type"] == "application/problem+json"
    assert "open balance" in refused.json()["message"]
    assert refused.json()["blockers"][0].startswith("open balance")
    blank = client.post(
        url, headers=headers, json={"reason": "  ", "confirm_customer_number": ref, "force": True}
    )
    assert blank.status_code == 422 and blank.json()["code"] == "reason_required"
    assert blank.headers["content-type"] == "application/problem+json"
    db.expire_all()
    assert db.get(Debtor, seeded.debtor.id).name == seeded.name
    assert _events(db, "privacy.erased") == []
    forced = client.post(
        url,
        headers=headers,
        json={"reason": "court order", "confirm_customer_number": ref, "force": True},
    )
    assert forced.status_code == 200, forced.text
    assert forced.json()["forced"] is True and forced.json()["leftovers"] == {}
    assert occurrences(db, seeded.needles) == {}
    assert _events(db, "privacy.erased")[0].actor == "api:privacy-admin"


# --- console --------------------------------------------------------------------------------


def test_console_collector_gets_403(client: TestClient, db: Session, tmp_path: Path) -> None:
    seeded = seed_debtor(db, tmp_path)
    collector = make_user(db, "collector")
    assert login(client, collector.email).status_code == 303
    assert (
        client.get(f"/console/admin/privacy?ref={seeded.debtor.customer_number}").status_code == 403
    )
    token = csrf_of(client)
    for action in ("export", "erase"):
        answer = client.post(
            f"/console/admin/privacy/{seeded.debtor.id}/{action}",
            data={"csrf_token": token, "reason": "x", "confirm": seeded.debtor.customer_number},
        )
        assert answer.status_code == 403
    assert db.get(Debtor, seeded.debtor.id).name == seeded.name
    assert _events(db, "privacy.exported") == []


def test_console_admin_exports_and_erases(client: TestClient, db: Session, tmp_path: Path) -> None:
    seeded = seed_debtor(db, tmp_path)
    admin = make_user(db, "admin")
    assert login(client, admin.email).status_code == 303
    ref = seeded.debtor.customer_number
    page = client.get(f"/console/admin/privacy?ref={ref}")
    assert page.status_code == 200 and seeded.name in page.text
    token = csrf_of(client, f"/console/admin/privacy?ref={ref}")

    export = client.post(
        f"/console/admin/privacy/{seeded.debtor.id}/export", data={"csrf_token": token}
    )
    assert export.status_code == 200
    assert export.headers["content-type"] == "application/zip"
    document = json.loads(zipfile.ZipFile(io.BytesIO(export.content)).read("export.json"))
    assert document["tables"]["debtors"][0]["email"] == seeded.email

    unconfirmed = client.post(
        f"/console/admin/privacy/{seeded.debtor.id}/erase",
        data={"csrf_token": token, "reason": "request", "confirm": ""},
    )
    assert unconfirmed.status_code == 422 and "Type the customer number" in unconfirmed.text
    assert db.get(Debtor, seeded.debtor.id).name == seeded.name

    done = client.post(
        f"/console/admin/privacy/{seeded.debtor.id}/erase",
        data={"csrf_token": token, "reason": "request by letter", "confirm": ref},
        follow_redirects=False,
    )
    assert done.status_code == 303
    db.expire_all()
    assert occurrences(db, seeded.needles) == {}
    assert _events(db, "privacy.erased")[0].actor == f"user:{admin.email}"
    assert "erased" in client.get(done.headers["location"]).text


def test_console_shows_why_erasure_is_refused(
    client: TestClient, db: Session, tmp_path: Path
) -> None:
    seeded = seed_debtor(db, tmp_path, settled=False)
    admin = make_user(db, "admin")
    login(client, admin.email)
    ref = seeded.debtor.customer_number
    page = client.get(f"/console/admin/privacy?ref={ref}")
    assert "open balance of 12345 minor units EUR" in page.text
    token = csrf_of(client, f"/console/admin/privacy?ref={ref}")
    refused = client.post(
        f"/console/admin/privacy/{seeded.debtor.id}/erase",
        data={"csrf_token": token, "reason": "request", "confirm": ref},
    )
    assert refused.status_code == 422 and "refused" in refused.text
    assert db.get(Debtor, seeded.debtor.id).name == seeded.name
