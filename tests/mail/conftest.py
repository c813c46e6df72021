"""Mail fixtures: the aiosmtpd sink, settings pointing at it, the gateway installed, debtors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from mail.gateway import SmtpMailGateway
from relance.conversations import ports
from relance.db.models import Contact, Debtor
from relance.settings import Settings, get_settings
from tests.mail.sink import Sink
from tests.support.channels import rasa  # noqa: F401

DEBTOR_EMAIL = "camille.martin@client.example"
INBOUND_SECRET = "inbound-secret-for-the-mail-tests-0123456789"


def point_smtp_at(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings sending to a local SMTP server on `port` (no TLS, no rate cap)."""
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(port))
    monkeypatch.setenv("SMTP_SECURITY", "none")
    monkeypatch.setenv("SMTP_DOMAIN_RATE_PER_SECOND", "0")
    monkeypatch.setenv("MAIL_FROM", "relances@creancier.example")
    monkeypatch.setenv("MAIL_INBOUND_SECRET", INBOUND_SECRET)
    get_settings.cache_clear()


@pytest.fixture
def sink(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sink]:
    running = Sink().start()
    point_smtp_at(running.port, monkeypatch)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def mail_gateway(sink: Sink, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpMailGateway]:
    installed = SmtpMailGateway(get_settings())
    monkeypatch.setattr(ports, "_mail_gateway", installed)
    try:
        yield installed
    finally:
        installed.transport.close()


def make_mail_debtor(
    db: Session,
    *,
    email: str = DEBTOR_EMAIL,
    language: str = "fr",
    segment: str = "consumer",
    phone: str | None = "+33639981234",
) -> Debtor:
    debtor = Debtor(
        customer_number=f"M-{email}",
        name="Camille Martin" if language == "fr" else "Jordan Smith",
        company="Martin SARL" if segment == "b2b" else None,
        segment=segment,
        language=language,
        postcode="75011",
        email=email,
    )
    db.add(debtor)
    db.flush()
    db.add(Contact(debtor_id=debtor.id, channel="email", address=email))
    if phone:
        db.add(Contact(debtor_id=debtor.id, channel="sms", address=phone))
    db.flush()
    db.refresh(debtor)
    return debtor
