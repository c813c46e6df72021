"""A formal-notice letter is a contact: the dispatcher's letter step obeys the same pressure rules
as a text (minimum gap, frequency cap), with the reason stored."""

from __future__ import annotations

from datetime import timedelta

from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db import session as db_session
from relance.db.base import utcnow
from relance.db.models import Debtor, DunningAction, Invoice, Letter
from relance.dunning.dispatcher import Dispatcher
from relance.dunning.planner import plan
from tests.factories import make_debtor, make_invoice
from tests.relance.dunning.helpers import FakeAssistant, FakeGateway

MONDAY_11 = "2026-11-23 10:00:00"  # 11:00 in Paris


def _dispatcher() -> Dispatcher:
    return Dispatcher(
        db_session.get_sessionmaker(),
        gateway=FakeGateway(),
        assistant=FakeAssistant(),
        worker_id="test",
    )


def _letter_due(db: Session) -> tuple[Debtor, Invoice]:
    debtor = make_debtor(
        db, segment="b2b", company="Atelier Martin SARL", channels=("sms", "whatsapp")
    )
    invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=30))
    return debtor, invoice


def _sms_sent(db: Session, debtor: Debtor, invoice: Invoice, hours_ago: float, n: int) -> None:
    db.add(
        DunningAction(
            idempotency_key=f"{invoice.id}:earlier{n}",
            invoice_id=invoice.id,
            debtor_id=debtor.id,
            stage=f"earlier{n}",
            kind="message",
            group_key=f"{debtor.id}:earlier:{n}",
            status="sent",
            sent_at=utcnow() - timedelta(hours=hours_ago),
            channels=["sms"],
            channel="sms",
        )
    )
    db.flush()


def _letter_rows(db: Session, debtor: Debtor) -> list[DunningAction]:
    db.expire_all()
    return list(
        db.scalars(
            select(DunningAction).where(
                DunningAction.debtor_id == debtor.id, DunningAction.kind == "letter"
            )
        )
    )


def _letters(db: Session, debtor: Debtor) -> list[Letter]:
    return list(db.scalars(select(Letter).where(Letter.debtor_id == debtor.id)))


@freeze_time(MONDAY_11)
def test_letter_three_hours_after_a_text_is_deferred_by_the_minimum_gap(db: Session) -> None:
    debtor, invoice = _letter_due(db)
    plan(db, debtor_ids=[debtor.id])
    _sms_sent(db, debtor, invoice, hours_ago=3, n=1)
    assert _dispatcher().run() == {"deferred": 1}
    assert _letters(db, debtor) == []  # no letter rendered, none queued for the post
    [row] = _letter_rows(db, debtor)
    assert (row.status, row.outcome) == ("planned", "deferred:min_gap")
    assert row.next_attempt_at == utcnow() + timedelta(hours=17)
    assert "less than 20 h ago" in (row.detail or "")
    with freeze_time("2026-11-24 07:00:00"):  # the gap has passed: the letter goes
        assert _dispatcher().run() == {"letter": 1}
    assert len(_letters(db, debtor)) == 1


@freeze_time(MONDAY_11)
def test_letter_over_the_frequency_cap_is_deferred(db: Session) -> None:
    debtor, invoice = _letter_due(db)
    plan(db, debtor_ids=[debtor.id])
    for n, hours in enumerate((30, 60, 90)):
        _sms_sent(db, debtor, invoice, hours_ago=hours, n=n)
    assert _dispatcher().run() == {"deferred": 1}
    [row] = _letter_rows(db, debtor)
    assert row.outcome == "deferred:frequency_cap" and _letters(db, debtor) == []
