"""Admin pages: e-invoice upload with its per-file report; webhooks with a secret shown once."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.outbox.models import WebhookEndpoint
from tests.console.conftest import csrf_of
from tests.relance.einvoice.samples import Sample, ubl


def test_admin_uploads_einvoices_and_sees_each_file(as_admin: TestClient) -> None:
    token = csrf_of(as_admin, "/console/admin/einvoices")
    answer = as_admin.post(
        "/console/admin/einvoices",
        data={"csrf_token": token},
        files=[
            ("files", ("ok.xml", ubl(Sample()), "text/xml")),
            ("files", ("bad.xml", ubl(Sample(number="N-2", total="abc")), "text/xml")),
        ],
    )
    assert answer.status_code == 422
    assert "ok.xml" in answer.text and "created" in answer.text
    assert "invoice total with VAT (BT-112)" in answer.text and "is not a number" in answer.text


def test_collector_cannot_open_the_pages(as_collector: TestClient) -> None:
    assert as_collector.get("/console/admin/einvoices").status_code == 403
    assert as_collector.get("/console/admin/webhooks").status_code == 403


def test_webhook_secret_is_shown_once(as_admin: TestClient, db: Session) -> None:
    token = csrf_of(as_admin, "/console/admin/webhooks")
    created = as_admin.post(
        "/console/admin/webhooks",
        data={"csrf_token": token, "url": "https://erp.example/in", "events": ["payment.received"]},
    )
    assert created.status_code == 200
    endpoint = db.scalars(select(WebhookEndpoint)).one()
    assert endpoint.secret in created.text
    later = as_admin.get("/console/admin/webhooks")
    assert "https://erp.example/in" in later.text and endpoint.secret not in later.text
    toggled = as_admin.post(
        f"/console/admin/webhooks/{endpoint.id}/active",
        data={"csrf_token": token, "active": "false"},
        follow_redirects=False,
    )
    assert toggled.status_code == 303
    db.refresh(endpoint)
    assert endpoint.active is False
