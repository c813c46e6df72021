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
from sqlalchemy import Engine, func, select
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


def _dispatch(engine: Engine, sink: Sink, *, known_debtors: bool, mails: int = MAILS) -> SqlCount:
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    sink.received.clear()
    with factory() as session:
        first = session.scalar(select(func.count(Debtor.id))) or 0
        actions = plan_email_reminders(session, range(first, first + mails))
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
    assert dict(outcomes) == {"sent": mails}
    assert len(sink.received) == mails
    with factory() as session:
        assert {a.status for a in session.scalars(select(DunningAction))} == {"sent"}
        sent = list(session.scalars(select(Message).where(Message.channel == "email")))
        assert len(sent) == len({m.provider_id for m in sent})
        assert all(m.status == "sent" and (m.extra or {}).get("sha256") for m in sent)
    assert len(actions) == mails
    return counted


# What one batch of due e-mail reminders costs, whatever its size (relance/dunning/email_batch):
# the listing of due groups and of their channels, the claim, ~10 IN-queries for the re-check
# and the compliance facts, the conversations (one INSERT of the new ones and a read), the
# outbound rows (one INSERT and a read of their ids), the proofs and outcomes (a few multi-row
# UPDATEs and INSERTs). It was ~24 queries and 4 writing commits per e-mail, one e-mail at a time.
QUERIES_PER_BATCH = 32
WRITING_COMMITS_PER_BATCH = 3  # claim and re-check; rows before SMTP; proofs after


def test_a_first_reminder_costs_a_bounded_number_of_queries_and_commits(
    file_engine: Engine, sink: Sink
) -> None:
    counted = _dispatch(file_engine, sink, known_debtors=False)
    assert counted.writing_commits == WRITING_COMMITS_PER_BATCH
    assert counted.queries <= QUERIES_PER_BATCH
    wording_reads = sum(
        n for sql, n in counted.by_statement.items() if "versioned_documents.document" in sql
    )
    assert wording_reads == 1  # once per batch, not once per e-mail or piece of it


def test_a_batch_costs_the_same_queries_for_five_times_the_e_mails(
    file_engine: Engine, sink: Sink
) -> None:
    """No statement per e-mail left on the path (SQLite included: no INSERT ... RETURNING per
    row, which SQLite's driver would send one by one)."""
    small = _dispatch(file_engine, sink, known_debtors=False)
    large = _dispatch(file_engine, sink, known_debtors=False, mails=5 * MAILS)
    assert large.queries == small.queries
    assert large.writing_commits == small.writing_commits == WRITING_COMMITS_PER_BATCH


def test_a_later_reminder_writes_no_more(file_engine: Engine, sink: Sink) -> None:
    counted = _dispatch(file_engine, sink, known_debtors=True)
    assert counted.writing_commits == WRITING_COMMITS_PER_BATCH
    assert counted.queries <= QUERIES_PER_BATCH


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
