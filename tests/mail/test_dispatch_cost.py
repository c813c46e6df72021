"""What one e-mail reminder costs the database through the dispatcher (issue 19's benchmark).

On a real file database, not the rolled-back test transaction: a commit that wrote is an fsync
(SQLite WAL with synchronous=FULL, PostgreSQL with synchronous_commit=on) and was most of the time
a reminder took. The bounds pin the work per e-mail so a change that adds a round trip or a
commit to the hot path fails here, not months later in the benchmark.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from mail.gateway import SmtpMailGateway
from relance.conversations.repository import conversation_for_debtor
from relance.db.base import Base
from relance.db.models import Debtor, DunningAction, Message
from relance.db.session import make_engine
from relance.dunning.dispatcher import Dispatcher, release_stale
from relance.settings import get_settings
from tests.mail.helpers import plan_email_reminders
from tests.mail.sink import Sink
from tests.relance.dunning.helpers import FakeAssistant, FakeGateway
from tests.support.sql_counter import SqlCount, counting

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday, 11:00 in Paris
MAILS = 6


@pytest.fixture
def file_engine(tmp_path: Path, sink: Sink) -> Iterator[Engine]:
    import relance.db.models  # noqa: F401  (fills Base.metadata)

    engine = make_engine(f"sqlite:///{tmp_path / 'cost.db'}")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def _dispatch(engine: Engine, sink: Sink, *, known_debtors: bool) -> SqlCount:
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory() as session:
        actions = plan_email_reminders(session, range(MAILS))
        if known_debtors:  # later reminders: the conversation exists since the first one
            for debtor in session.scalars(select(Debtor)):
                conversation_for_debtor(session, debtor)
        session.commit()
    gateway = SmtpMailGateway(get_settings())
    dispatcher = Dispatcher(
        factory,
        gateway=FakeGateway(),
        mail_gateway=gateway,
        assistant=FakeAssistant(),
        worker_id="cost",
    )
    try:
        with counting(engine) as counted:
            outcomes = dispatcher.run(now=NOW)
    finally:
        gateway.transport.close()
    assert dict(outcomes) == {"sent": MAILS}
    assert len(sink.received) == MAILS
    with factory() as session:
        assert {a.status for a in session.scalars(select(DunningAction))} == {"sent"}
        sent = list(session.scalars(select(Message).where(Message.channel == "email")))
        assert len(sent) == MAILS == len({m.provider_id for m in sent})
        assert all(m.status == "sent" and (m.extra or {}).get("sha256") for m in sent)
    assert len(actions) == MAILS
    return counted


def test_a_first_reminder_costs_a_bounded_number_of_queries_and_commits(
    file_engine: Engine, sink: Sink
) -> None:
    counted = _dispatch(file_engine, sink, known_debtors=False)
    per_mail = counted.per(MAILS)
    # Four: the group's claim, the conversation, the outbound row with what composing wrote
    # (committed before SMTP, see test_nothing_is_locked_or_in_doubt_during_the_smtp_exchange),
    # and the proof with the action's outcome.
    assert per_mail["writing_commits"] <= 4
    assert per_mail["queries"] <= 25
    wording_reads = sum(
        n for sql, n in counted.by_statement.items() if "versioned_documents.document" in sql
    )
    assert wording_reads == MAILS  # once per e-mail, not once per piece of it


def test_a_later_reminder_writes_no_more(file_engine: Engine, sink: Sink) -> None:
    per_mail = _dispatch(file_engine, sink, known_debtors=True).per(MAILS)
    assert per_mail["writing_commits"] <= 3
    assert per_mail["queries"] <= 24


def test_nothing_is_locked_or_in_doubt_during_the_smtp_exchange(
    file_engine: Engine, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the SMTP server takes its time, another process can write (a webhook, the console):
    the write lock is not held through the exchange; and the outbound row is already committed,
    with the payment link the e-mail carries, so a crash after the answer leaves no e-mail
    pointing at a row that was rolled back."""
    factory = sessionmaker(bind=file_engine, expire_on_commit=False)
    with factory() as session:
        plan_email_reminders(session, [1])
        session.commit()
    seen: dict[str, object] = {}
    gateway = SmtpMailGateway(get_settings())
    send = gateway.transport.send

    def slow_send(sender: str, recipient: str, data: bytes) -> object:
        other = sqlite3.connect(str(file_engine.url.database), timeout=0.2)
        try:
            other.execute("BEGIN IMMEDIATE")  # fails with "database is locked" if held
            seen["queued"] = other.execute(
                "SELECT count(*) FROM messages WHERE channel = 'email' AND status = 'queued'"
            ).fetchone()[0]
            seen["links"] = other.execute("SELECT count(*) FROM payment_links").fetchone()[0]
            other.execute("ROLLBACK")
        finally:
            other.close()
        return send(sender, recipient, data)

    monkeypatch.setattr(gateway.transport, "send", slow_send)
    dispatcher = Dispatcher(
        factory, gateway=FakeGateway(), mail_gateway=gateway, assistant=FakeAssistant()
    )
    try:
        assert dict(dispatcher.run(now=NOW)) == {"sent": 1}
    finally:
        gateway.transport.close()
    assert seen["queued"] == 1
    sent_link = re.search(rb"/pay/[\w-]+", sink.received[0].data) if sink.received else None
    assert seen["links"] == (1 if sent_link else 0)


class WorkerKilled(BaseException):
    """The worker dies (not an error it could handle): nothing after this point runs."""


def test_a_worker_killed_after_the_smtp_answer_never_sends_again(
    file_engine: Engine, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proof never reached the database: the group's committed claim and the committed
    outbound row both stop a second send."""
    factory = sessionmaker(bind=file_engine, expire_on_commit=False)
    with factory() as session:
        plan_email_reminders(session, [1])
        session.commit()

    def killed(*_args: object) -> None:
        raise WorkerKilled

    gateway = SmtpMailGateway(get_settings())
    dispatcher = Dispatcher(
        factory, gateway=FakeGateway(), mail_gateway=gateway, assistant=FakeAssistant()
    )
    with monkeypatch.context() as patched, pytest.raises(WorkerKilled):
        patched.setattr("mail.gateway.write_private", killed)  # right after the SMTP answer
        dispatcher.run(now=NOW)
    assert len(sink.received) == 1
    again = Dispatcher(
        factory, gateway=FakeGateway(), mail_gateway=gateway, assistant=FakeAssistant()
    )
    assert dict(again.run(now=NOW)) == {}
    gateway.transport.close()
    assert len(sink.received) == 1
    with factory() as session:
        action = session.scalars(select(DunningAction)).one()
        assert action.status == "sending"  # release_stale reports it failed, never re-sends
        assert release_stale(session, now=NOW + timedelta(hours=2), older_than=timedelta(hours=1))
        assert action.status == "failed" and action.outcome == "stale_claim"
