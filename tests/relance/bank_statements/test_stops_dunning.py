"""End to end: a statement paying an invoice by its RF reference stops its planned reminders,
exactly as a card payment does (the dispatcher cancels the action as `paid`)."""

from __future__ import annotations

from datetime import timedelta

from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.bank_statements import rf, service
from relance.db import session as db_session
from relance.db.base import utcnow
from relance.db.models import DunningAction
from relance.dunning.dispatcher import Dispatcher
from relance.dunning.planner import plan
from relance.ledger.service import open_balance
from tests.factories import make_debtor, make_invoice
from tests.relance.bank_statements.builders import Credit, camt053
from tests.relance.dunning.helpers import FakeAssistant, FakeGateway

MONDAY_11 = "2026-11-23 10:00:00"


@freeze_time(MONDAY_11)
def test_imported_transfer_pays_the_invoice_and_cancels_its_reminders(db: Session, gateway) -> None:  # type: ignore[no-untyped-def]
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    paid = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    still = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    plan(db, debtor_ids=[debtor.id])
    planned = db.scalars(select(DunningAction).where(DunningAction.debtor_id == debtor.id)).all()
    assert {a.invoice_id for a in planned} == {paid.id, still.id}

    amount = f"{paid.amount_minor / 100:.2f}"
    report = service.import_statement(
        db,
        camt053(
            [Credit(amount, ref="E2E-1", structured=rf.for_invoice(paid.id))],
            statement_id="E2E-STATEMENT",
        ),
        actor="test",
    )
    assert report.paid_invoice_ids == [paid.id]
    assert open_balance(db, debtor.id, "EUR") == still.amount_minor - still.paid_minor
    db.flush()

    dunning_gateway, assistant = FakeGateway(), FakeAssistant()
    outcomes = Dispatcher(
        db_session.get_sessionmaker(), gateway=dunning_gateway, assistant=assistant, worker_id="t"
    ).run()
    assert outcomes == {"sent": 1}
    assert assistant.calls[0][2]["invoice_refs"] == [still.number]
    db.expire_all()
    by_invoice = {
        a.invoice_id: a
        for a in db.scalars(select(DunningAction).where(DunningAction.debtor_id == debtor.id))
    }
    assert (by_invoice[paid.id].status, by_invoice[paid.id].outcome) == ("cancelled", "paid")
