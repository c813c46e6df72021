"""A reminder claims only what it is about: the invoices the engine named that are due (a dunning
stage) or the named one coming due (a pre-due reminder). It said "600 € overdue" for an overdue
100 € invoice next to a 500 € one due next month: the sum of every open invoice, with the
late-payment mentions then looking attached to money not yet due."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db import session as db_session
from relance.db.models import Debtor, DunningAction, Invoice, PaymentLink
from relance.db.models.enums import Segment
from relance.dunning.dispatcher import Dispatcher
from relance.dunning.reminder_content import reminder_invoices, reminder_variables
from relance.rasa_client import AssistantUnavailable
from tests.factories import make_debtor, make_invoice, verify_contact_point
from tests.relance.dunning.helpers import FakeAssistant, FakeGateway

TODAY = date(2026, 11, 23)
MONDAY_11 = "2026-11-23 10:00:00"  # 11:00 in Paris, inside every window


def _invoice(id_: int, number: str, amount: int, due: date) -> Invoice:
    return Invoice(
        id=id_,
        number=number,
        amount_minor=amount,
        paid_minor=0,
        currency="EUR",
        issue_date=due - timedelta(days=30),
        due_date=due,
    )


OVERDUE = _invoice(1, "F-1", 10_000, TODAY - timedelta(days=10))
NEXT_MONTH = _invoice(2, "F-2", 50_000, TODAY + timedelta(days=30))
OPEN = [OVERDUE, NEXT_MONTH]


def _debtor() -> Debtor:
    return Debtor(id=7, name="Marie Martin", segment=Segment.B2B)


def test_a_dunning_stage_claims_the_named_overdue_invoice_not_the_whole_balance() -> None:
    about = reminder_invoices(OPEN, ["F-1"], stage="friendly", today=TODAY)
    variables = reminder_variables(_debtor(), about, ["F-1"], today=TODAY, pay_url=None)
    assert variables["amount_minor"] == 10_000
    assert variables["invoice_refs"] == ["F-1"]
    assert variables["due_date"] == OVERDUE.due_date.isoformat()


def test_a_dunning_stage_leaves_out_a_named_invoice_not_yet_due() -> None:
    """A group may name an invoice whose pre-due stage falls on the same day: not overdue."""
    about = reminder_invoices(OPEN, ["F-1", "F-2"], stage="firm", today=TODAY)
    assert about == [OVERDUE]


def test_without_names_a_dunning_stage_claims_only_the_invoices_due() -> None:
    about = reminder_invoices(OPEN, None, stage="final", today=TODAY)
    variables = reminder_variables(_debtor(), about, None, today=TODAY, pay_url=None)
    assert (variables["amount_minor"], variables["invoice_refs"]) == (10_000, ["F-1"])


def test_a_pre_due_reminder_is_about_the_named_upcoming_invoice() -> None:
    upcoming = _invoice(3, "F-3", 20_000, TODAY + timedelta(days=10))
    about = reminder_invoices(
        [OVERDUE, upcoming, NEXT_MONTH], ["F-3"], stage="pre_due", today=TODAY
    )
    variables = reminder_variables(_debtor(), about, ["F-3"], today=TODAY, pay_url=None)
    assert variables["amount_minor"] == 20_000
    assert variables["invoice_refs"] == ["F-3"]
    assert variables["due_date"] == upcoming.due_date.isoformat()


def test_an_invoice_due_today_is_due() -> None:
    today = _invoice(4, "F-4", 3_000, TODAY)
    assert reminder_invoices([today, NEXT_MONTH], None, stage="friendly", today=TODAY) == [today]


def _group(db: Session, debtor: Debtor, *stages: tuple[Invoice, str]) -> None:
    for invoice, stage in stages:
        db.add(
            DunningAction(
                idempotency_key=f"{invoice.id}:{stage}",
                invoice_id=invoice.id,
                debtor_id=debtor.id,
                stage=stage,
                kind="message",
                group_key=f"{debtor.id}:contact:{TODAY.isoformat()}",
                channels=["sms"],
            )
        )
    db.flush()


def _dispatch_locally(db: Session) -> list[str]:
    db.commit()
    gateway = FakeGateway()
    dispatcher = Dispatcher(
        db_session.get_sessionmaker(),
        gateway=gateway,
        assistant=FakeAssistant(error=AssistantUnavailable("503")),
        worker_id="test",
    )
    assert dispatcher.run() == {"sent": 1}
    return [sent["body"] for sent in gateway.sent]


@freeze_time(MONDAY_11)
@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_local_render_states_the_overdue_amount_and_its_link_asks_for_it(
    db: Session, language: str
) -> None:
    debtor = make_debtor(db, channels=("sms",), language=language)
    overdue = make_invoice(db, debtor, 10_000, due=TODAY - timedelta(days=10))
    later = make_invoice(db, debtor, 50_000, due=TODAY + timedelta(days=30))
    verify_contact_point(db, debtor)
    _group(db, debtor, (overdue, "friendly"))
    [body] = _dispatch_locally(db)
    assert "100,00" in body or "100.00" in body, body
    # Amounts as written (the factory's numbers and the link's token may hold "500" or "600").
    assert not any(a in body for a in ("600,00", "500,00", "600.00", "500.00")), body
    assert later.number not in body, body
    db.expire_all()
    [link] = db.scalars(select(PaymentLink).where(PaymentLink.debtor_id == debtor.id))
    # the page the debtor opens asks for what the reminder said, not 600 €
    assert (link.amount_minor, link.invoice_ids) == (10_000, [overdue.id])


@freeze_time(MONDAY_11)
def test_a_group_with_an_upcoming_invoice_names_only_the_overdue_one(db: Session) -> None:
    debtor = make_debtor(db, channels=("sms",), language="fr", segment=Segment.B2B)
    overdue = make_invoice(db, debtor, 10_000, due=TODAY - timedelta(days=10))
    upcoming = make_invoice(db, debtor, 50_000, due=TODAY + timedelta(days=10))
    verify_contact_point(db, debtor)
    _group(db, debtor, (overdue, "friendly"), (upcoming, "pre_due"))
    [body] = _dispatch_locally(db)
    assert overdue.number in body and upcoming.number not in body, body
    assert "100,00" in body and "600,00" not in body, body
