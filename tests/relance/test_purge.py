"""The concurrency tests' cleanup leaves nothing behind for the next test to count."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import sessionmaker

from relance.db.base import Base
from relance.disputes.service import create_dispute
from relance.ledger.service import record_payment
from tests.factories import make_debtor, make_invoice
from tests.support.purge import purge_debtors


def test_purge_removes_every_row_that_refers_to_the_debtor(engine: Engine) -> None:
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory() as session:
        debtor = make_debtor(session, channels=("sms", "whatsapp"))
        make_invoice(session, debtor, due=date(2026, 3, 1), amount_minor=5_000)
        record_payment(
            session,
            debtor_id=debtor.id,
            amount_minor=5_000,
            currency="EUR",
            method="transfer",
            provider="bank",
            provider_ref="PURGE-1",
            thank=False,
        )  # writes an outbox event, whose debtor_id has no foreign key
        create_dispute(session, debtor, reason="amount", details="wrong total")
        session.commit()
        purge_debtors(session, [debtor.id])
        left = {
            table.name: n
            for table in Base.metadata.sorted_tables
            if "debtor_id" in table.c
            and (
                n := session.scalar(
                    select(func.count()).select_from(table).where(table.c.debtor_id == debtor.id)
                )
            )
        }
    assert left == {}
