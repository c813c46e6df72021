"""Fixtures of the worker tests: a debtor with a reminder due, the gateway and the assistant
faked (the dispatcher's collaborators)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session

from relance.conversations import ports
from relance.db.models import Debtor
from relance.dunning import dispatcher as dispatcher_module
from tests.factories import make_debtor, make_invoice
from tests.relance.dunning.helpers import FakeAssistant, FakeGateway


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> FakeGateway:
    fake = FakeGateway()
    monkeypatch.setattr(ports, "_gateway", fake)
    return fake


@pytest.fixture
def assistant(monkeypatch: pytest.MonkeyPatch) -> FakeAssistant:
    fake = FakeAssistant()
    monkeypatch.setattr(dispatcher_module, "_default_assistant", lambda: fake)
    return fake


FROZEN_NOW = "2026-11-23 10:00:00"  # a Monday, within the contact window


@pytest.fixture
def overdue_debtor(db: Session) -> Debtor:
    """A debtor whose invoice fell due three days before FROZEN_NOW (tests freeze time there;
    fixtures run before the freeze, so the date is written out)."""
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=date(2026, 11, 20))
    return debtor
