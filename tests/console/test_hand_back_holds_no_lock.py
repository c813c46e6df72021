"""A hand-back lets the bot speak while no transaction of the console is open (SQLite).

The bot's turn runs actions that write to the database. The console used to keep its request's
transaction (on SQLite: the file's write lock) open across that turn, so the action server waited
for it until Rasa timed out and the bot's hand-back message was lost.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from relance.db import session as db_session
from relance.db.base import Base
from relance.db.models import Conversation
from relance.db.session import make_engine
from relance.rasa_client import BotMessage
from relance.settings import Settings
from tests.console.conftest import FakeGateway, csrf_of, login
from tests.factories import make_handed_off_case, make_user
from tests.relance.dunning.test_dispatch_holds_no_lock import WRITER


class ActionsWritingRasa:
    def __init__(self, database: Path) -> None:
        self.database = database
        self.outcomes: list[str] = []

    def append_events(self, sender_id: str, events: list[dict[str, Any]]) -> None:
        pass

    def trigger_intent(self, sender_id: str, intent: str, entities: Any = None) -> list[BotMessage]:
        done = subprocess.run(
            [sys.executable, "-c", WRITER, str(self.database)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.outcomes.append(done.stdout.strip() or done.stderr.strip())
        return [BotMessage(text="Je reprends la conversation.")]

    def close(self) -> None:
        pass


def test_the_bots_turn_after_a_hand_back_can_write(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, gateway: FakeGateway
) -> None:
    import relance.db.models  # noqa: F401  (fills Base.metadata)
    from relance.app import create_app

    database = tmp_path / "relance.db"
    engine = make_engine(f"sqlite:///{database}")
    Base.metadata.create_all(engine)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    monkeypatch.setattr(db_session, "get_sessionmaker", lambda: factory)
    with factory() as session:
        collector = make_user(session, "collector")
        _, conversation, _ = make_handed_off_case(session)
        conversation.mode = "human"
        session.commit()
        email, conversation_id = collector.email, conversation.id
    rasa = ActionsWritingRasa(database)
    monkeypatch.setattr("console.casework.client_from_settings", lambda: rasa)

    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert login(client, email).status_code == 303
        path = f"/console/conversations/{conversation_id}"
        back = client.post(
            f"{path}/hand-back", data={"csrf_token": csrf_of(client, path)}, follow_redirects=False
        )

    assert back.status_code == 303 and back.headers["location"].endswith("done=handed_back")
    assert rasa.outcomes == ["written"], "the action server was locked out during the bot's turn"
    assert gateway.sent[-1]["text"] == "Je reprends la conversation."
    with Session(engine) as session:
        assert session.scalar(select(Conversation.mode)) == "bot"
    engine.dispose()
