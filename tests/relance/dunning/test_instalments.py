"""An e-invoice payable in instalments is dunned per instalment from its own due date: the
planner plans only the instalment that is due, and the reminder names its amount, not the
invoice's total (the whole was chased from the first date before)."""

from __future__ import annotations

from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db import session as db_session
from relance.db.models import Debtor, DunningAction, Invoice, PaymentLink
from relance.dunning.dispatcher import Dispatcher
from relance.dunning.planner import plan
from relance.einvoice.bundle import Source
from relance.einvoice.service import import_sources
from relance.rasa_client import AssistantUnavailable
from tests.factories import verify_contact_point
from tests.relance.dunning.helpers import FakeAssistant, FakeGateway
from tests.relance.einvoice.samples import Sample, facturx, ubl

MONDAY_11 = "2026-11-23 10:00:00"  # 11:00 in Paris
# The first instalment is 3 days late (the friendly stage), the others still to come.
SCHEDULE = (("2026-11-20", "100.00"), ("2026-12-20", "100.00"), ("2027-01-20", "100.00"))
DOCUMENTS = {
    "facturx": lambda s: facturx(s, "extended"),
    "ubl": ubl,
}


def _import(db: Session, tmp_path: Path, fmt: str) -> tuple[Debtor, list[Invoice]]:
    doc = Sample(number="F2026-0042", total="300.00", instalments=SCHEDULE)
    report = import_sources(
        db, [Source("f", DOCUMENTS[fmt](doc))], actor="test", store_dir=tmp_path
    )
    assert report.files[0].status == "created", report.files[0].problems
    parts = list(db.scalars(select(Invoice).order_by(Invoice.instalment_no)))
    return parts[0].debtor, parts


@freeze_time(MONDAY_11)
@pytest.mark.parametrize("fmt", sorted(DOCUMENTS))
def test_only_the_due_instalment_is_planned_and_the_reminder_names_its_amount(
    db: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    import relance.nlg.templates_store as store

    templates = {
        "utter_reminder_friendly": [
            {
                "fr": "Rappel {{ invoice_refs|join(', ') }} : {{ amount_minor|money(currency) }}",
                "en": "Reminder {{ invoice_refs|join(', ') }}: {{ amount_minor|money(currency) }}",
            }
        ]
    }
    monkeypatch.setattr(store, "active_templates", lambda session: templates)
    debtor, (first, *_later) = _import(db, tmp_path, fmt)
    plan(db, debtor_ids=[debtor.id])
    actions = list(db.scalars(select(DunningAction).where(DunningAction.debtor_id == debtor.id)))
    assert [(a.invoice_id, a.stage) for a in actions] == [(first.id, "friendly")]
    verify_contact_point(db, debtor)
    db.commit()
    gateway = FakeGateway()
    dispatcher = Dispatcher(
        db_session.get_sessionmaker(),
        gateway=gateway,
        assistant=FakeAssistant(error=AssistantUnavailable("503")),
        worker_id="test",
    )
    assert dispatcher.run() == {"sent": 1}
    [sent] = gateway.sent
    assert sent["body"].startswith("Rappel F2026-0042 (1/3) : 100,00")
    assert "300,00" not in sent["body"] and "200,00" not in sent["body"]
    # the reminder's link asks for what is due, not for the instalments still to come
    db.expire_all()
    [link] = db.scalars(select(PaymentLink).where(PaymentLink.debtor_id == debtor.id))
    assert (link.amount_minor, link.invoice_ids) == (10_000, [first.id])
