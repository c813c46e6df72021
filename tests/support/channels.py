"""Fixtures shared by the channel tests: Twilio recorder, fake Rasa, installed gateway, and the
phone numbers their debtors text and call from (debtors themselves: tests.factories)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from relance.conversations import ports
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
