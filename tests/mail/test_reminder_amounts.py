"""An e-mail reminder claims only what is due: its body, subject, copies and pay button are about
the overdue invoice, not an invoice due later that the same day's group also holds (its pre-due
stage fell on that day). The body said "600 € past due" for 100 € overdue and 500 € to come."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mail.gateway import SmtpMailGateway
from relance.compliance.windows import zone
from relance.db import session as db_session
from relance.db.models import Debtor, DunningAction, Invoice, PaymentLink
from relance.dunning.dispatcher import Dispatcher
from relance.rasa_client import AssistantUnavailable
from tests.factories import make_debtor, make_invoice
from tests.mail.conftest import DEBTOR_EMAIL
from tests.mail.helpers import debtor_wrote_by_mail
from tests.mail.sink import Sink
from tests.relance.dunning.helpers import FakeAssistant, FakeGateway


@pytest.fixture
def payments_port(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The worker's payments port (the sandbox provider), so the reminder carries its links."""
    from payment_links.providers.sandbox import SandboxProvider
    from payment_links.wiring import PaymentLinksAdapter
    from relance.ledger import ports
    from relance.settings import get_settings

    monkeypatch.setattr(ports, "_payments", PaymentLinksAdapter(SandboxProvider(get_settings())))
    yield


def _action(db: Session, debtor: Debtor, invoice: Invoice, stage: str) -> None:
    db.add(
        DunningAction(
            idempotency_key=f"{invoice.id}:{stage}",
            invoice_id=invoice.id,
            debtor_id=debtor.id,
            stage=stage,
            kind="message",
            group_key=f"{debtor.id}:contact:today",
            channels=["email"],
        )
    )


@pytest.mark.usefixtures("payments_port")
def test_the_email_reminder_claims_the_overdue_invoice_only(
    db: Session, sink: Sink, mail_gateway: SmtpMailGateway
) -> None:
    today = datetime.now(UTC).astimezone(zone("Europe/Paris")).date()
    now = datetime(today.year, today.month, today.day, 10, 0, tzinfo=UTC)  # 11:00 in Paris
    debtor = make_debtor(db, channels=("email",), email=DEBTOR_EMAIL)
    debtor_wrote_by_mail(db, debtor)  # a known address: the reminder may name the debt
    overdue = make_invoice(db, debtor, 10_000, number="F-OVERDUE", due=today - timedelta(days=10))
    upcoming = make_invoice(db, debtor, 50_000, number="F-UPCOMING", due=today + timedelta(days=10))
    _action(db, debtor, overdue, "friendly")
    _action(db, debtor, upcoming, "pre_due")
    db.flush()
    dispatcher = Dispatcher(
        db_session.get_sessionmaker(),
        gateway=FakeGateway(),
        mail_gateway=mail_gateway,
        assistant=FakeAssistant(error=AssistantUnavailable("503")),  # rendered locally
        worker_id="test",
    )
    assert dict(dispatcher.run(now=now)) == {"sent": 1}
    [received] = sink.received
    message = received.message
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content().replace("\xa0", " ")
    assert "F-OVERDUE" in text and "100,00 €" in text, text
    assert "F-UPCOMING" not in text and "600,00" not in text and "500,00" not in text, text
    assert "F-UPCOMING" not in str(message["Subject"])
    attached = [part.get_filename() for part in message.iter_attachments()]
    assert len(attached) == 1 and "F-OVERDUE" in str(attached[0]), attached
    db.expire_all()
    links = list(db.scalars(select(PaymentLink).where(PaymentLink.debtor_id == debtor.id)))
    # the body's link and the pay button: each for the overdue invoice alone
    assert links and {(link.amount_minor, tuple(link.invoice_ids)) for link in links} == {
        (10_000, (overdue.id,))
    }
