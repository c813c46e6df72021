"""Timeline preview over 60 days: stage dates, windows, pauses, skips, and why."""

from __future__ import annotations

from datetime import date, timedelta

from freezegun import freeze_time
from sqlalchemy.orm import Session

from relance.db.base import utcnow
from relance.db.models import Dispute, Promise
from relance.dunning.planner import plan
from relance.dunning.timeline import timeline
from tests.factories import make_debtor, make_invoice
from tests.relance.dunning.helpers import utc


@freeze_time("2026-11-23 08:00:00")  # Monday
def test_stages_of_one_invoice_over_sixty_days(db: Session) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp", "voice"))
    due = date(2026, 12, 3)  # Thursday
    make_invoice(db, debtor, due=due, number="F-1")
    entries = timeline(db, debtor)
    assert [(e.day, e.stage) for e in entries] == [
        (date(2026, 11, 23), "pre_due"),  # J-10
        (date(2026, 12, 6), "friendly"),  # J+3, a Sunday...
        (date(2026, 12, 13), "firm"),
        (date(2026, 12, 23), "call"),
        (date(2027, 1, 2), "formal_notice"),
        (date(2027, 1, 17), "legal"),
    ]
    friendly = entries[1]
    assert friendly.at == utc(2026, 12, 7, 9, 0)  # ...so it goes on Monday 10:00 Paris
    assert any("Sunday" in w for w in friendly.why)
    assert entries[0].at == utc(2026, 11, 23, 9, 0)
    assert entries[3].channels == ["voice", "sms"]


@freeze_time("2026-11-23 08:00:00")
def test_holiday_moves_a_contact(db: Session) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=date(2026, 12, 22))  # friendly on Christmas Day
    friendly = next(e for e in timeline(db, debtor) if e.stage == "friendly")
    assert friendly.at == utc(2026, 12, 28, 9, 0)  # 26 Dec is a Saturday, 27 a Sunday
    assert any("public holiday" in w for w in friendly.why)


@freeze_time("2026-11-23 08:00:00")
def test_promise_postpones_and_dispute_skips(db: Session) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    today = utcnow().date()
    promised = make_invoice(db, debtor, due=today - timedelta(days=10), number="P-1")
    disputed = make_invoice(db, debtor, due=today - timedelta(days=3), number="D-1")
    db.add(
        Promise(
            debtor_id=debtor.id,
            amount_minor=1,
            currency="EUR",
            promised_date=today + timedelta(days=4),
            invoice_ids=[promised.id],
        )
    )
    db.add(Dispute(reference="DSP-1", debtor_id=debtor.id, invoice_id=disputed.id, reason="amount"))
    db.flush()
    entries = timeline(db, debtor, days=20)
    firm = next(e for e in entries if e.stage == "firm")
    assert firm.day == today + timedelta(days=5) and "P-1" in firm.invoices
    assert any("promise to pay" in w for w in firm.why)
    skipped = [e for e in entries if e.skipped]
    assert skipped and all(e.invoices == ["D-1"] for e in skipped)
    assert "dispute" in skipped[0].why[0]


@freeze_time("2026-11-23 08:00:00")
def test_sent_stages_are_not_repeated_and_writes_nothing(db: Session) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    plan(db, debtor_ids=[debtor.id])
    entries = timeline(db, debtor, days=10)
    assert entries[0].stage == "friendly" and "already planned (planned)" in entries[0].why
    assert [e.stage for e in entries] == ["friendly", "firm"]
