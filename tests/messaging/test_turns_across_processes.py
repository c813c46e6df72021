"""One turn at a time per conversation across real processes, on the default set-up (SQLite file).

The api (uvicorn) and the worker's replay job run as separate OS processes against one SQLite
file, with a slow fake Rasa so that the replay always finds a message the api is still
answering. What the debtor must see: exactly one reply per message, every later turn answered,
and Rasa told each message once. Before the locks held across processes, the replay answered
messages the api was answering (duplicate replies, a tracker with every message twice).

Also: a process that dies holding a conversation's turn or owning a message does not block it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.conversations.turn_lock import conversation_turn, has_live_owner
from relance.db.base import Base
from relance.db.models import Message
from relance.db.models.enums import MessageStatus
from relance.db.session import make_engine
from relance.runtime import stack
from relance.settings import Settings, get_settings
from tests.factories import make_debtor
from tests.support.channels import DEBTOR_PHONE
from tests.support.fake_rasa import FakeRasa
from tests.support.twilio_recorder import TwilioRecorder
from tests.support.twilio_signing import sign, sms_fields

TURN_SECONDS = 0.4  # each Rasa turn: long enough for the replay loop to look many times

REPLAY_LOOP = """
import time
from relance.wiring import wire
from relance.worker.jobs import replay_pending
wire()
print("ready", flush=True)
while True:
    replay_pending()
    time.sleep(0.02)
"""

HOLD_AND_WAIT = """
import sys, time
from sqlalchemy.orm import Session
from relance.conversations.turn_lock import conversation_turn, message_owner
from relance.db.session import make_engine
from relance.runtime import stack
session = Session(make_engine(sys.argv[1]))
with conversation_turn(session, 1, 0) as owned, message_owner(session, 7):
    print("held" if owned else "busy", flush=True)
    time.sleep(600)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def database(tmp_path: Path, settings: Settings) -> str:
    """A fresh SQLite file with one debtor, committed (the processes share only this file)."""
    import relance.db.models  # noqa: F401  (fills Base.metadata)

    url = f"sqlite:///{tmp_path / 'relance.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        make_debtor(session, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
        session.commit()
    engine.dispose()
    return url


@pytest.fixture
def processes(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, FakeRasa, TwilioRecorder, str]]:
    """The api and the replay worker as two OS processes; yields (api url, rasa, twilio, db)."""
    rasa = FakeRasa().start()
    twilio = TwilioRecorder().start()

    def slow(text: str) -> list[dict[str, str]]:
        time.sleep(TURN_SECONDS)
        return [{"text": f"echo: {text}"}]

    rasa.default = slow
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("RASA_TIMEOUT_SECONDS", "5")
    get_settings.cache_clear()
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "RASA_URL": rasa.url,
        "TWILIO_API_BASE": twilio.url,
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("ACTION_SERVER_URL", None)
    running = stack.Stack(env=env, log_dir=tmp_path / "logs")
    try:
        running.start(stack.api_service(stack.Ports(api=port)), timeout=60)
        running.start(
            stack.Service(
                name="replay-worker",
                argv=[sys.executable, "-c", REPLAY_LOOP],
                health_url=f"{base}/healthz",
            )
        )
        worker_log = tmp_path / "logs" / "replay-worker.log"
        deadline = time.monotonic() + 60
        while "ready" not in worker_log.read_text():
            assert time.monotonic() < deadline, worker_log.read_text()
            time.sleep(0.1)
        yield base, rasa, twilio, database
    finally:
        running.stop()
        rasa.stop()
        twilio.stop()


def _sms(api: str, body: str) -> list[str]:
    fields = sms_fields(DEBTOR_PHONE, body)
    url = f"{api}/twilio/sms"
    response = httpx.post(
        url,
        data=fields,
        headers={"X-Twilio-Signature": sign(url, fields)},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return [m.text or "" for m in ET.fromstring(response.text).iter("Message")]


def _inbound(database: str) -> list[Message]:
    engine = make_engine(database)
    try:
        with Session(engine) as session:
            return list(
                session.scalars(
                    select(Message).where(Message.direction == "inbound").order_by(Message.id)
                )
            )
    finally:
        engine.dispose()


def test_api_and_replay_worker_answer_each_message_exactly_once(
    processes: tuple[str, FakeRasa, TwilioRecorder, str],
) -> None:
    api, rasa, twilio, database = processes
    bodies = [f"message {n}" for n in range(1, 10)]
    inline: list[str] = []
    for body in bodies[:4]:  # one after the other, as a debtor typing
        inline += _sms(api, body)
    with ThreadPoolExecutor(max_workers=5) as pool:  # a burst: turns queue behind each other
        for replies in pool.map(lambda body: _sms(api, body), bodies[4:]):
            inline += replies

    deadline = time.monotonic() + 60  # anything kept (holding reply) is replayed by the worker
    while any(m.status != MessageStatus.RECEIVED for m in _inbound(database)):
        assert time.monotonic() < deadline, [(m.body, m.status) for m in _inbound(database)]
        time.sleep(0.2)
    time.sleep(1)  # a stray replay would show up now

    replies = Counter(
        text for text in [*inline, *(r.field("Body") or "" for r in twilio.messages())]
        if text.startswith("echo: ")
    )  # fmt: skip
    assert replies == Counter(f"echo: {body}" for body in bodies), "one reply per message"
    assert Counter(rasa.texts()) == Counter(bodies), "Rasa told each message once"
    assert sorted(m.body for m in _inbound(database)) == bodies
    assert all(m.status == MessageStatus.RECEIVED for m in _inbound(database))


def test_a_dead_holder_frees_the_conversation_and_its_message(
    database: str, tmp_path: Path
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_WAIT, database],
        stdout=(tmp_path / "h.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while "held" not in (tmp_path / "h.log").read_text():
            assert holder.poll() is None and time.monotonic() < deadline, (
                tmp_path / "h.log"
            ).read_text()
            time.sleep(0.1)
        engine = make_engine(database)
        with Session(engine) as session:
            assert has_live_owner(session, 7)
            with conversation_turn(session, 1, 0.2) as owned:
                assert not owned, "another process holds the turn"
            holder.kill()  # crashes: no clean-up runs
            holder.wait()
            assert not has_live_owner(session, 7)
            with conversation_turn(session, 1, 0) as owned:
                assert owned
        engine.dispose()
    finally:
        holder.kill()
        holder.wait()
