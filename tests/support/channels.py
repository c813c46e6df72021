"""Fixtures shared by the channel tests: Twilio recorder, fake Rasa, installed gateway, debtors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from relance.conversations import ports
from relance.db.models import Contact, Debtor
from relance.settings import Settings, get_settings
from tests.support.fake_rasa import FakeRasa
from tests.support.twilio_recorder import TwilioRecorder

DEBTOR_PHONE = "+33639981111"
EN_DEBTOR_PHONE = "+447700900123"


@pytest.fixture
def twilio(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[TwilioRecorder]:
    """A running recorder; the settings (and any gateway built after) point the client at it."""
    recorder = TwilioRecorder().start()
    monkeypatch.setenv("TWILIO_API_BASE", recorder.url)
    get_settings.cache_clear()
    try:
        yield recorder
    finally:
        recorder.stop()


@pytest.fixture
def rasa(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRasa]:
    fake = FakeRasa().start()
    monkeypatch.setenv("RASA_URL", fake.url)
    get_settings.cache_clear()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def gateway(twilio: TwilioRecorder, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A TwilioGateway on the recorder, installed as the process gateway."""
    from twilio_edge.gateway import TwilioGateway

    installed = TwilioGateway(get_settings())
    monkeypatch.setattr(ports, "_gateway", installed)
    return installed


def make_debtor(
    db: Session,
    *,
    phone: str = DEBTOR_PHONE,
    language: str = "fr",
    channels: tuple[str, ...] = ("sms", "voice"),
    whatsapp: bool = False,
    customer_number: str | None = None,
) -> Debtor:
    debtor = Debtor(
        customer_number=customer_number or f"C-{phone[-6:]}-{language}",
        name="Camille Martin" if language == "fr" else "Jordan Smith",
        language=language,
        postcode="75011",
    )
    db.add(debtor)
    db.flush()
    for channel in channels:
        db.add(Contact(debtor_id=debtor.id, channel=channel, address=phone))
    if whatsapp:
        db.add(Contact(debtor_id=debtor.id, channel="whatsapp", address=f"whatsapp:{phone}"))
    db.flush()
    return debtor
