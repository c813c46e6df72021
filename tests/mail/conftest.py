"""Mail fixtures: the aiosmtpd sink, settings pointing at it, the gateway installed.

Debtors with an e-mail contact come from tests.factories (`channels=("email", ...)`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mail.gateway import SmtpMailGateway
from relance.conversations import ports
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
