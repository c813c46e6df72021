"""Admin pages: e-invoice upload with its per-file report; webhooks with a secret shown once and
the delivery log."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import AuditEvent, Invoice
from relance.outbox import service as outbox
from relance.outbox.models import WebhookDelivery, WebhookEndpoint
from relance.outbox.secret_box import unseal
from relance.settings import get_settings
from tests.console.conftest import csrf_of
from tests.relance.einvoice.samples import Sample, ubl
from tests.relance.outbox.dns import fake_dns


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


def test_instalments_not_adding_up_are_refused_on_the_page_with_the_sums(
    as_admin: TestClient, db: Session
) -> None:
    token = csrf_of(as_admin, "/console/admin/einvoices")
    wrong = Sample(number="F-I", instalments=(("2026-10-31", "50.00"), ("2026-11-30", "50.00")))
    answer = as_admin.post(
        "/console/admin/einvoices",
        data={"csrf_token": token},
        files=[("files", ("i.xml", ubl(wrong), "text/xml"))],
    )
    assert answer.status_code == 422
    assert "add up to 100.00 EUR, but the amount due is 120.00 EUR" in answer.text
    assert db.scalars(select(Invoice)).first() is None


def test_collector_cannot_open_the_pages(as_collector: TestClient) -> None:
    assert as_collector.get("/console/admin/einvoices").status_code == 403
    assert as_collector.get("/console/admin/webhooks").status_code == 403


def test_webhook_secret_is_shown_once(
    as_admin: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_dns(monkeypatch, {})
    token = csrf_of(as_admin, "/console/admin/webhooks")
    created = as_admin.post(
        "/console/admin/webhooks",
        data={"csrf_token": token, "url": "https://erp.example/in", "events": ["payment.received"]},
    )
    assert created.status_code == 200
    endpoint = db.scalars(select(WebhookEndpoint)).one()
    secret = unseal(endpoint.secret_sealed, get_settings().secret_key)
    assert secret in created.text and secret not in endpoint.secret_sealed
    later = as_admin.get("/console/admin/webhooks")
    assert "https://erp.example/in" in later.text and secret not in later.text
    rotated = as_admin.post(
        f"/console/admin/webhooks/{endpoint.id}/secret", data={"csrf_token": token}
    )
    db.refresh(endpoint)
    new_secret = unseal(endpoint.secret_sealed, get_settings().secret_key)
    assert rotated.status_code == 200 and new_secret != secret and new_secret in rotated.text
    assert "webhook_endpoint.secret_rotated" in db.scalars(select(AuditEvent.action)).all()
    assert new_secret not in as_admin.get("/console/admin/webhooks").text
    missing = as_admin.post("/console/admin/webhooks/999999/secret", data={"csrf_token": token})
    assert missing.status_code == 404
    toggled = as_admin.post(
        f"/console/admin/webhooks/{endpoint.id}/active",
        data={"csrf_token": token, "active": "false"},
        follow_redirects=False,
    )
    assert toggled.status_code == 303
    db.refresh(endpoint)
    assert endpoint.active is False


def test_an_internal_webhook_url_is_refused_with_a_clear_message(
    as_admin: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_dns(monkeypatch, {})
    token = csrf_of(as_admin, "/console/admin/webhooks")
    answer = as_admin.post(
        "/console/admin/webhooks",
        data={"csrf_token": token, "url": "http://169.254.169.254/latest/meta-data/"},
    )
    assert answer.status_code == 422 and "non-public address" in answer.text
    assert db.scalars(select(WebhookEndpoint)).all() == []


def test_a_collector_cannot_rotate_a_secret(as_collector: TestClient) -> None:
    token = csrf_of(as_collector)
    answer = as_collector.post("/console/admin/webhooks/1/secret", data={"csrf_token": token})
    assert answer.status_code == 403


def _delivery_row(page: str, delivery: WebhookDelivery) -> str:
    """The delivery log's row for `delivery` (cells joined, tags stripped)."""
    table = page.split('class="table webhook-deliveries"', 1)[1].split("</table>", 1)[0]
    for row in table.split("<tr>")[1:]:
        if row.startswith(f"<td>{delivery.id}</td>"):
            return " ".join(re.sub(r"<[^>]+>", " ", row).split())
    raise AssertionError(f"delivery {delivery.id} is not in the log")


def test_the_delivery_log_shows_each_delivery(as_admin: TestClient, db: Session) -> None:
    """What an admin checks when the creditor says an event never arrived: the event, the
    endpoint, the status, the attempts and the last answer."""
    erp = WebhookEndpoint(url="https://erp.example/in", events=[], secret_sealed="unused")
    crm = WebhookEndpoint(url="https://crm.example/in", events=[], secret_sealed="unused")
    db.add_all([erp, crm])
    db.flush()
    event = outbox.emit(db, "payment.received", debtor_id=None, payment_id=1, amount_minor=100)
    db.flush()
    delivered, failed = sorted(
        db.scalars(select(WebhookDelivery).where(WebhookDelivery.event_id == event.id)),
        key=lambda d: d.endpoint_id,
    )
    assert (delivered.endpoint_id, failed.endpoint_id) == (erp.id, crm.id)
    delivered.status, delivered.attempts = "delivered", 1
    delivered.last_status_code, delivered.delivered_at = (
        200,
        datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
    )
    failed.status, failed.attempts = "failed", outbox.MAX_ATTEMPTS
    failed.last_status_code, failed.last_error = 503, "<h1>Service Unavailable</h1> busy"
    db.flush()

    page = as_admin.get("/console/admin/webhooks")
    assert page.status_code == 200
    assert _delivery_row(page.text, delivered) == (
        f"{delivered.id} payment.received {event.event_id} #{erp.id} delivered 1 200 "
        "2026-11-20 09:30:00+00:00"
    )
    assert _delivery_row(page.text, failed) == (
        f"{failed.id} payment.received {event.event_id} #{crm.id} failed {outbox.MAX_ATTEMPTS} "
        "503 &lt;h1&gt;Service Unavailable&lt;/h1&gt; busy"
    )
    assert "Nothing sent yet." not in page.text
