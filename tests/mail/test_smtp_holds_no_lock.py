"""No e-mail path holds the database's write lock while the SMTP server takes its time (SQLite).

Every SQLite transaction starts with BEGIN IMMEDIATE (the file's write lock), so a send made
inside an open transaction keeps every webhook, the console and the actions waiting until the
mail server answers. Each path that sends e-mail runs here against a sink that holds DATA
unanswered until another connection, once the exchange has begun, has tried to write with a
short busy timeout: the write must go through during the exchange. The server answers only after
the write's outcome is known, so a sender holding the lock through SMTP can never release it in
time (the write fails "database is locked"), and a loaded machine cannot make the exchange end
before the write is tried (it did with a one-second sleep: the test failed now and then). The
answer to an unknown sender used to be sent inside the request's transaction (after the
Message-ID claim and the audit row were written), so it failed here.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from console import casework
from mail import inbound
from mail.gateway import SmtpMailGateway
from relance.conversations import ports
from relance.conversations.replay import replay_all
from relance.conversations.reply_retry import retry_due
from relance.conversations.repository import conversation_for_debtor
from relance.db import session as db_session
from relance.db.base import Base, utcnow
from relance.db.models import Conversation, Debtor, Message, ReplyRetry, User
from relance.db.models.enums import Direction, MessageStatus
from relance.db.session import make_engine
from relance.dunning.dispatcher import Dispatcher
from relance.rasa_client import client_from_settings
from relance.settings import Settings
from tests.factories import make_debtor, make_user
from tests.mail.conftest import DEBTOR_EMAIL
from tests.mail.helpers import plan_email_reminders
from tests.mail.inbound_helpers import raw_mail
from tests.mail.sink import Sink
from tests.relance.dunning.helpers import FakeAssistant, FakeGateway
from tests.support.fake_rasa import FakeRasa
from tests.support.reply_retries import open_at

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday, 11:00 in Paris
STRANGER = "comptable@autre.example"
WRITER_TIMEOUT = 0.25  # the other writer's busy timeout (the exchange waits for its outcome)

Act = Callable[[], object]


class ConcurrentWriter:
    """Another process's webhook: once the SMTP server has the message, it writes; the server
    answers DATA only after that (`release`)."""

    def __init__(self, database: Path, sink: Sink) -> None:
        self.database, self.sink = database, sink
        self.outcome = "no SMTP exchange began"
        self.during_smtp = False
        self.release = threading.Event()
        self._thread = threading.Thread(target=self._write, daemon=True)

    def _write(self) -> None:
        try:
            if not self.sink.data_started.wait(30):
                return
            connection = sqlite3.connect(
                self.database, timeout=WRITER_TIMEOUT, isolation_level=None
            )
            try:
                connection.execute("BEGIN IMMEDIATE")  # "database is locked" if the lock is held
                connection.execute("UPDATE debtors SET name = name")
                connection.execute("COMMIT")
                self.outcome, self.during_smtp = "written", self.sink.in_data
            except sqlite3.OperationalError as exc:
                self.outcome = str(exc)
            finally:
                connection.close()
        finally:
            self.release.set()  # the server may answer now


@contextmanager
def writing_during_smtp(database: Path, sink: Sink) -> Iterator[ConcurrentWriter]:
    sink.data_started.clear()
    writer = ConcurrentWriter(database, sink)
    sink.hold = writer.release
    writer._thread.start()
    try:
        yield writer
    finally:
        sink.data_started.set()  # a path that sent nothing must not leave the thread waiting
        writer._thread.join(30)
        sink.hold = None


@pytest.fixture
def database(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, sessionmaker[Session]]]:
    """A real SQLite file (BEGIN IMMEDIATE, separate connections), used by every session."""
    import relance.db.models  # noqa: F401  (fills Base.metadata)

    path = tmp_path / "relance.db"
    engine = make_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    monkeypatch.setattr(db_session, "get_sessionmaker", lambda: factory)
    monkeypatch.setattr(ports, "_gateway", FakeGateway())  # the replay asks for the text edge
    yield path, factory
    engine.dispose()


def _debtor(factory: sessionmaker[Session]) -> Debtor:
    with factory() as session:
        debtor = make_debtor(session, channels=("email",), email=DEBTOR_EMAIL)
        session.commit()
        return debtor


def _handle(factory: sessionmaker[Session], gateway: SmtpMailGateway, raw: bytes) -> str:
    with factory() as session:
        outcome = inbound.handle_raw(session, raw, gateway)
        session.commit()
        return outcome.status


def _due_retry(factory: sessionmaker[Session], debtor_id: int | None) -> datetime:
    with factory() as session:
        retry = session.scalars(select(ReplyRetry)).one()
        debtor = session.get(Debtor, debtor_id) if debtor_id is not None else None
        return open_at(debtor, retry.next_attempt_at)


# -- the paths ---------------------------------------------------------------------------------
def _reply(factory: sessionmaker[Session], sink: Sink, gateway: SmtpMailGateway) -> Act:
    _debtor(factory)
    raw = raw_mail("Combien je dois ?", message_id="<question@client.example>")
    return lambda: _handle(factory, gateway, raw) == "answered"


def _unknown_sender(factory: sessionmaker[Session], sink: Sink, gateway: SmtpMailGateway) -> Act:
    _debtor(factory)
    raw = raw_mail("Quel montant ?", message_id="<stranger@autre.example>", sender=STRANGER)
    return lambda: _handle(factory, gateway, raw) == "unknown_number"


def _replay(factory: sessionmaker[Session], sink: Sink, gateway: SmtpMailGateway) -> Act:
    debtor = _debtor(factory)
    with factory() as session:
        conversation = conversation_for_debtor(session, debtor)
        session.add(
            Message(
                conversation_id=conversation.id,
                direction=Direction.INBOUND,
                channel="email",
                author="debtor",
                body="Je paierai vendredi.",
                address=DEBTOR_EMAIL,
                provider_id="<kept@client.example>",
                status=MessageStatus.PENDING_ASSISTANT,
                extra={"subject": "Re: Rappel"},
                created_at=utcnow(),
            )
        )
        session.commit()

    def act() -> bool:
        rasa = client_from_settings()
        try:
            with factory() as session:
                replayed = replay_all(session, rasa)
                session.commit()
        finally:
            rasa.close()
        return replayed == 1

    return act


def _collector(factory: sessionmaker[Session], sink: Sink, gateway: SmtpMailGateway) -> Act:
    debtor = _debtor(factory)
    with factory() as session:
        user = make_user(session, "collector")
        conversation = conversation_for_debtor(session, debtor)
        conversation.last_channel = "email"
        casework.take_over(session, conversation, user)
        session.commit()
        conversation_id, user_id = conversation.id, user.id

    def act() -> bool:
        with factory() as session:
            conversation = session.get(Conversation, conversation_id)
            user = session.get(User, user_id)
            assert conversation is not None and user is not None
            casework.reply(session, conversation, user, "Bonjour, je regarde votre dossier.")
            session.commit()
        return True

    return act


def _reply_retry(factory: sessionmaker[Session], sink: Sink, gateway: SmtpMailGateway) -> Act:
    debtor = _debtor(factory)
    sink.fail_next = ["451 4.3.0 Try again later"]
    raw = raw_mail("Combien je dois ?", message_id="<retried@client.example>")
    assert _handle(factory, gateway, raw) == "reply_retrying"
    now = _due_retry(factory, debtor.id)
    return lambda: retry_due(factory, now=now) == {"sent": 1}


def _unknown_sender_retry(
    factory: sessionmaker[Session], sink: Sink, gateway: SmtpMailGateway
) -> Act:
    _debtor(factory)
    sink.fail_next = ["451 4.3.0 Try again later"]
    raw = raw_mail("Quel montant ?", message_id="<stranger-2@autre.example>", sender=STRANGER)
    assert _handle(factory, gateway, raw) == "reply_retrying"
    now = _due_retry(factory, None)
    return lambda: retry_due(factory, now=now) == {"sent": 1}


def _dunning(factory: sessionmaker[Session], sink: Sink, gateway: SmtpMailGateway) -> Act:
    with factory() as session:
        plan_email_reminders(session, [1])
        session.commit()
    dispatcher = Dispatcher(
        factory, gateway=FakeGateway(), mail_gateway=gateway, assistant=FakeAssistant()
    )
    return lambda: dict(dispatcher.run(now=NOW)) == {"sent": 1}


PATHS = {
    "reply": _reply,
    "unknown_sender": _unknown_sender,
    "replay": _replay,
    "collector_message": _collector,
    "reply_retry": _reply_retry,
    "unknown_sender_retry": _unknown_sender_retry,
    "dunning_dispatch": _dunning,
}


@pytest.mark.parametrize("path", list(PATHS))
def test_a_webhook_writes_while_the_smtp_server_is_slow(
    path: str,
    database: tuple[Path, sessionmaker[Session]],
    sink: Sink,
    rasa: FakeRasa,
    mail_gateway: SmtpMailGateway,
) -> None:
    file, factory = database
    act = PATHS[path](factory, sink, mail_gateway)
    received = len(sink.received)
    with writing_during_smtp(file, sink) as writer:
        assert act()
    assert len(sink.received) == received + 1  # the path did send, through the slow server
    assert writer.outcome == "written", f"{path}: the write waited for SMTP ({writer.outcome})"
    assert writer.during_smtp
