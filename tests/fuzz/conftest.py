"""Fuzz fixtures: the real app, a live API token, and some data for the API to chew on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from relance.settings import Settings
from tests.factories import (
    make_contact,
    make_conversation,
    make_debtor,
    make_dispute,
    make_handoff,
    make_invoice,
    make_letter,
    make_message,
    make_plan,
    make_promise,
    make_token,
)


@pytest.fixture
def app(db: Session, settings: Settings) -> Iterator[FastAPI]:
    from relance.app import create_app

    yield create_app(settings)


@pytest.fixture
def auth(db: Session) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(db, 'fuzz')}"}


@pytest.fixture
def seeded(db: Session) -> dict[str, int]:
    """A little of everything, so the API returns rows while it is fuzzed; ids by path name."""
    debtor = make_debtor(db, name="Zoë 🎉 O'Brien")
    make_contact(db, debtor, address="+33639980001")
    invoice = make_invoice(db, debtor, status="disputed")
    dispute = make_dispute(db, debtor, invoice_id=invoice.id)
    make_plan(db, debtor)
    make_promise(db, debtor)
    make_letter(db, debtor)
    conv = make_conversation(db, debtor)
    make_message(db, conv, "Bonjour")
    make_handoff(db, conv)
    return {"debtor_id": debtor.id, "conversation_id": conv.id, "dispute_id": dispute.id}
