"""After a bounce (a DSN through POST /mail/inbound) the dispatcher never sends to that address
again: a due e-mail reminder goes by the next channel, or is blocked saying the address bounced."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from mail.gateway import SmtpMailGateway
from relance.db import session as db_session
from relance.db.models import AuditEvent, Debtor, DunningAction
from relance.dunning.dispatcher import Dispatcher
from tests.factories import make_debtor, make_invoice
from tests.mail.conftest import DEBTOR_EMAIL
from tests.mail.inbound_helpers import dsn, post_mail
from tests.mail.sink import Sink
from tests.relance.dunning.helpers import FakeAssistant, FakeGateway

MONDAY_11 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 11:00 in Paris, inside every window


def _due_email_action(db: Session, debtor: Debtor, group: str) -> DunningAction:
    invoice = make_invoice(
        db, debtor, 12000, number=f"F-{group}", issued=date(2026, 10, 1), due=date(2026, 11, 20)
    )
    action = DunningAction(
        idempotency_key=f"{group}:friendly:{invoice.id}",
        invoice_id=invoice.id,
        debtor_id=debtor.id,
        stage="friendly",
        kind="message",
        group_key=group,
        channels=["email", "sms"],
    )
    db.add(action)
    db.flush()
    return action


def _run(gateway: FakeGateway, mail_gateway: SmtpMailGateway, now: datetime) -> dict[str, int]:
    dispatcher = Dispatcher(
        db_session.get_sessionmaker(),
        gateway=gateway,
        mail_gateway=mail_gateway,
        assistant=FakeAssistant(),
        worker_id="test",
    )
    return dict(dispatcher.run(now=now))


def test_after_a_bounce_the_next_reminder_goes_by_sms_not_to_the_address(
    db: Session, client: TestClient, sink: Sink, mail_gateway: SmtpMailGateway
) -> None:
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    gateway = FakeGateway()
    first = _due_email_action(db, debtor, "g1")
    assert _run(gateway, mail_gateway, MONDAY_11) == {"sent": 1}
    [received] = sink.received  # the e-mail path works: the reminder reached the sink
    assert received.recipients == [DEBTOR_EMAIL] and gateway.sent == []
    db.refresh(first)
    assert (first.status, first.channel) == ("sent", "email")

    bounce = post_mail(client, dsn(DEBTOR_EMAIL, message_id="<dsn-2@mx.client.example>"))
    assert bounce.json()["status"] == "bounce"

    second = _due_email_action(db, debtor, "g2")
    assert _run(gateway, mail_gateway, MONDAY_11 + timedelta(days=2)) == {"sent": 1}
    assert len(sink.received) == 1  # nothing more to the bounced address
    [sms] = gateway.sent
    assert sms["channel"] == "sms"
    db.refresh(second)
    assert (second.status, second.channel) == ("sent", "sms")


def test_a_bounced_address_with_no_other_channel_is_blocked_with_the_reason(
    db: Session, client: TestClient, sink: Sink, mail_gateway: SmtpMailGateway
) -> None:
    debtor = make_debtor(db, channels=("email",), email=DEBTOR_EMAIL)
    assert (
        post_mail(client, dsn(DEBTOR_EMAIL, message_id="<dsn-3@mx.client.example>")).json()[
            "status"
        ]
        == "bounce"
    )
    action = _due_email_action(db, debtor, "g3")
    gateway = FakeGateway()
    assert _run(gateway, mail_gateway, MONDAY_11) == {"blocked": 1}
    assert sink.received == [] and gateway.sent == []
    db.refresh(action)
    assert (action.status, action.outcome) == ("blocked", "no_channel_left")
    assert f"email: bounced: {DEBTOR_EMAIL} bounced" in (action.detail or "")
    assert "sms: no_contact: no sms contact point" in (action.detail or "")
    undeliverable = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "dunning.undeliverable")
    ).one()
    assert undeliverable.debtor_id == debtor.id
