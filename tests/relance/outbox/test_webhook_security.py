"""Security of outbound webhooks: no request inside our network (SSRF), secrets sealed at rest."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from relance.db.base import utcnow
from relance.db.models import AuditEvent
from relance.errors import BadInput
from relance.outbox import destinations
from relance.outbox import service as outbox
from relance.outbox.models import WebhookDelivery, WebhookEndpoint
from relance.outbox.secret_box import unseal
from relance.outbox.signing import HEADER, verify
from relance.settings import Settings
from tests.relance.outbox.dns import PUBLIC, fake_dns


def factory(db: Session) -> sessionmaker[Session]:
    return sessionmaker(bind=db.get_bind(), join_transaction_mode="create_savepoint")


def create(db: Session, url: str) -> outbox.NewEndpoint:
    return outbox.create_endpoint(db, url=url, events=[], description="", actor="user:a@x")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:5432/", "non-public address (127.0.0.1)"),
        ("https://[::1]/hook", "non-public address (::1)"),
        ("http://169.254.169.254/latest/meta-data/", "non-public address (169.254.169.254)"),
        ("https://10.1.2.3/hook", "non-public address (10.1.2.3)"),
        ("https://192.168.0.10/hook", "non-public address"),
        ("https://[::ffff:127.0.0.1]/hook", "non-public address"),
        ("https://[::ffff:a9fe:a9fe]/hook", "non-public address"),  # mapped 169.254.169.254
        ("https://[fe80::1]/hook", "non-public address"),
        ("https://[fc00::1]/hook", "non-public address"),
        ("https://224.0.0.1/hook", "non-public address"),
        ("https://[ff02::1]/hook", "non-public address"),
        ("https://0.0.0.0/hook", "non-public address"),
        ("https://[::]/hook", "non-public address"),
        ("https://240.0.0.1/hook", "non-public address"),
        ("https://100.64.0.1/hook", "non-public address"),
        ("https://[64:ff9b::7f00:1]/hook", "non-public address"),  # NAT64 of 127.0.0.1
        ("https://[2002:7f00:1::]/hook", "non-public address"),  # 6to4 of 127.0.0.1
        ("https://localhost/hook", "does not resolve"),
        ("https://user:pw@erp.example/hook", "credentials"),
        ("ftp://erp.example/hook", "https"),
        ("https:///nohost", "https"),
        ("https://erp.example:99999/hook", "invalid port"),
    ],
)
def test_internal_or_malformed_urls_are_refused_and_nothing_is_stored(
    db: Session, url: str, message: str
) -> None:
    with pytest.raises(BadInput, match=re.escape(message)):
        create(db, url)
    assert db.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0
    assert db.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_a_name_resolving_to_loopback_is_refused(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_dns(monkeypatch, {"evil.example": [PUBLIC, "127.0.0.1"], "v6.example": ["::1"]})
    with pytest.raises(BadInput, match=r"evil\.example is or resolves to .*127\.0\.0\.1"):
        create(db, "https://evil.example/hook")
    with pytest.raises(BadInput, match="::1"):
        create(db, "https://v6.example/hook")
    # a decimal IP is resolved too (glibc's inet_aton); the answer is what is checked
    fake_dns(monkeypatch, {"2130706433": ["127.0.0.1"]})
    with pytest.raises(BadInput, match=r"127\.0\.0\.1"):
        create(db, "https://2130706433/hook")


def test_http_only_outside_production() -> None:
    assert destinations.check("http://erp.example/in", allow_http=True).address.version == 4
    with pytest.raises(BadInput, match=r"must be an https URL$"):
        destinations.check("http://erp.example/in", allow_http=False)


def test_production_refuses_plain_http(db: Session, settings: Settings) -> None:
    settings.environment = "production"
    with pytest.raises(BadInput, match="https"):
        create(db, "http://erp.example/in")
    assert create(db, "https://erp.example/in").endpoint.url == "https://erp.example/in"


def _queued(db: Session, url: str) -> tuple[outbox.NewEndpoint, WebhookDelivery]:
    created = create(db, url)
    outbox.emit(db, "contact.opted_out", debtor_id=None, channel="sms")
    db.flush()
    return created, db.scalars(select(WebhookDelivery)).one()


def test_dns_changed_to_internal_after_creation_is_refused_before_connecting(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, delivery = _queued(db, "https://rebind.example/hook")
    fake_dns(monkeypatch, {"rebind.example": ["169.254.169.254"]})
    seen: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    result = outbox.deliver_due(factory(db), now=utcnow(), transport=httpx.MockTransport(receiver))
    assert result == {"delivered": 0, "retry": 1, "failed": 0}
    assert seen == []  # no connection was attempted
    db.refresh(delivery)
    assert "refused" in (delivery.last_error or "") and "169.254.169.254" in (
        delivery.last_error or ""
    )


def test_the_request_goes_to_the_checked_address_with_the_name_in_host_and_sni(
    db: Session,
) -> None:
    created, delivery = _queued(db, "https://erp.example:8443/hook?x=1")
    seen: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        verify(created.secret, request.headers[HEADER], request.content)
        return httpx.Response(204)

    outbox.deliver_due(factory(db), now=utcnow(), transport=httpx.MockTransport(receiver))
    [request] = seen
    assert str(request.url) == f"https://{PUBLIC}:8443/hook?x=1"
    assert request.headers["Host"] == "erp.example:8443"
    assert request.extensions["sni_hostname"] == "erp.example"
    db.refresh(delivery)
    assert delivery.status == "delivered"


def test_a_redirect_to_an_internal_address_is_not_followed(db: Session) -> None:
    _, delivery = _queued(db, "https://erp.example/hook")
    seen: list[str] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(307, headers={"Location": "http://169.254.169.254/latest/meta-data/"})

    outbox.deliver_due(factory(db), now=utcnow(), transport=httpx.MockTransport(receiver))
    assert seen == [f"https://{PUBLIC}/hook"]
    db.refresh(delivery)
    assert delivery.status == "pending" and delivery.last_status_code == 307
    assert "redirect not followed" in (delivery.last_error or "")


def test_the_secret_is_stored_encrypted_and_rotation_is_audited(
    db: Session, settings: Settings
) -> None:
    created, delivery = _queued(db, "https://erp.example/hook")
    endpoint = created.endpoint
    assert created.secret not in endpoint.secret_sealed
    assert unseal(endpoint.secret_sealed, settings.secret_key) == created.secret
    rotated = outbox.rotate_secret(db, endpoint.id, actor="user:a@x")
    assert rotated.secret != created.secret
    assert unseal(endpoint.secret_sealed, settings.secret_key) == rotated.secret
    audit = db.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [a.action for a in audit] == [
        "webhook_endpoint.created",
        "webhook_endpoint.secret_rotated",
    ]
    assert rotated.secret not in json.dumps([a.details for a in audit])
    db.flush()
    signed: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        signed.append(request)
        verify(rotated.secret, request.headers[HEADER], request.content)  # the new one signs
        return httpx.Response(200)

    outbox.deliver_due(factory(db), now=utcnow(), transport=httpx.MockTransport(receiver))
    db.refresh(delivery)
    assert len(signed) == 1 and delivery.status == "delivered"


def test_a_changed_secret_key_fails_clearly_instead_of_signing(
    db: Session, settings: Settings
) -> None:
    _, delivery = _queued(db, "https://erp.example/hook")
    settings.secret_key = "another-secret-key-of-sufficient-length-xx"
    seen: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    outbox.deliver_due(
        factory(db), now=utcnow() + timedelta(seconds=1), transport=httpx.MockTransport(receiver)
    )
    assert seen == []
    db.refresh(delivery)
    assert "rotate it" in (delivery.last_error or "")
