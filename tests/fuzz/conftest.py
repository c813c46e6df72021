"""Fuzz fixtures: the real app, a live API token, and some data for the API to chew on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from relance.settings import Settings
from tests.api import factories as f


@pytest.fixture
def app(db: Session, settings: Settings) -> Iterator[FastAPI]:
    from relance.app import create_app

    yield create_app(settings)


@pytest.fixture
def auth(db: Session) -> dict[str, str]:
    return {"Authorization": f"Bearer {f.token(db, 'fuzz')}"}


@pytest.fixture
def seeded(db: Session) -> dict[str, int]:
    """A little of everything, so the API returns rows while it is fuzzed; ids by path name."""
    debtor = f.debtor(db, name="Zoë 🎉 O'Brien")
    f.contact(db, debtor, "+33639980001")
    invoice = f.invoice(db, debtor, status="disputed")
    dispute = f.dispute(db, debtor, invoice_id=invoice.id)
    f.plan(db, debtor)
    f.promise(db, debtor)
    f.letter(db, debtor)
    conv = f.conversation(db, debtor)
    f.message(db, conv, "Bonjour")
    f.handoff(db, conv)
    return {"debtor_id": debtor.id, "conversation_id": conv.id, "dispute_id": dispute.id}
