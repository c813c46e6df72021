"""While the dispatcher waits for the assistant, other processes can use the database (SQLite).

Priming Rasa for a reminder runs a turn: Rasa calls the action server and the api's /nlg, and
both read and write the database meanwhile. The dispatcher used to keep its transaction open
(on SQLite: the file's write lock, taken by BEGIN IMMEDIATE) through that call, so they waited
until Rasa timed out; the reminder was rendered locally, and at start-up, with several reminders
due, api requests waited past the busy timeout and answered 503 "database is locked".
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from relance.db.base import Base
from relance.db.models import DunningAction
from relance.db.session import make_engine
from relance.dunning.dispatcher import Dispatcher
from relance.dunning.planner import plan
from relance.rasa_client import BotMessage
from relance.settings import Settings
from tests.factories import make_debtor, make_invoice
from tests.relance.dunning.helpers import FakeGateway, utc

NOW = utc(2026, 11, 23, 10, 0)  # Monday 11:00 in Paris: within the contact window

# What the action server does during a turn, as its own process, with a short busy timeout:
# waiting for a lock the dispatcher holds would make it fail here instead of after 30 s.
WRITER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], timeout=1, isolation_level=None)
try:
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("UPDATE debtors SET name = name")
    connection.execute("COMMIT")
    print("written")
except sqlite3.OperationalError as exc:
    print(exc)
"""


class ActionsWritingAssistant:
    """A Rasa whose turn makes the action server write to the database, as a separate process."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.outcomes: list[str] = []

    def append_events(self, sender_id: str, events: list[dict[str, Any]]) -> None:
        pass

    def trigger_intent(
        self, sender_id: str, intent: str, entities: dict[str, Any] | None = None
    ) -> list[BotMessage]:
        done = subprocess.run(
            [sys.executable, "-c", WRITER, str(self.database)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.outcomes.append(done.stdout.strip() or done.stderr.strip())
        return [BotMessage(text="Rappel : votre facture est échue.")]


def test_other_processes_write_while_the_dispatcher_waits_for_the_assistant(
    tmp_path: Path, settings: Settings
) -> None:
    import relance.db.models  # noqa: F401  (fills Base.metadata)

    database = tmp_path / "relance.db"
    engine = make_engine(f"sqlite:///{database}")
    Base.metadata.create_all(engine)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory() as session:
        debtors = [make_debtor(session, channels=("sms", "whatsapp")) for _ in range(2)]
        for debtor in debtors:
            make_invoice(session, debtor, due=NOW.date() - timedelta(days=3))
        plan(session, now=NOW)
        session.commit()

    gateway, assistant = FakeGateway(), ActionsWritingAssistant(database)
    outcomes = Dispatcher(factory, gateway=gateway, assistant=assistant).run(now=NOW)

    assert assistant.outcomes == ["written", "written"], "the action server was locked out"
    assert outcomes["sent"] == 2
    assert [s["body"] for s in gateway.sent] == ["Rappel : votre facture est échue."] * 2
    with Session(engine) as session:
        statuses = session.scalars(select(DunningAction.status)).all()
        assert set(statuses) == {"sent"}
    engine.dispose()
