"""Nothing lost when Rasa is down (holding reply, replay in order), and one processing per
MessageSid even when Twilio retries concurrently (real commits, separate connections)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from relance.conversations.replay import replay_all
from relance.db import session as db_session
from relance.db.base import Base
from relance.db.models import Message, WebhookEvent
from relance.db.models.enums import MessageStatus
from relance.nlg import channel_text
from relance.rasa_client import client_from_settings
from relance.settings import Settings
from tests.factories import make_debtor
from tests.support.channels import DEBTOR_PHONE
from tests.support.fake_rasa import FakeRasa
from tests.support.twilio_recorder import TwilioRecorder
from tests.support.twilio_signing import post, sms_fields
from tests.support.twiml import message_texts
from twilio_edge.gateway import TwilioGateway


def test_rasa_down_holding_reply_then_replay_in_order(
    client: TestClient, db: Session, rasa: FakeRasa, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    rasa.down = True
    holding = [
        message_texts(post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, body)))
        for body in ("un", "deux", "trois")
    ]
    assert all(len(h) == 1 and h[0] for h in holding)
    pending = db.scalars(
        select(Message.body)
        .where(Message.status == MessageStatus.PENDING_ASSISTANT)
        .order_by(Message.id)
    ).all()
    assert pending == ["un", "deux", "trois"]
    assert twilio.requests == []

    rasa.down = False
    client_ = client_from_settings()
    try:
        replayed = replay_all(db, client_)
    finally:
        client_.close()

    assert replayed == 3
    assert rasa.texts() == ["un", "deux", "trois"]
    # The first text the gateway sends in this conversation carries the engine's AI disclosure.
    first = channel_text.text(db, "utter_ai_disclosure_sentence", language="fr", channel="sms")
    first += " echo: un"
    assert [r.field("Body") for r in twilio.messages()] == [first, "echo: deux", "echo: trois"]
    assert all(r.field("To") == DEBTOR_PHONE for r in twilio.messages())
    inbound = db.scalars(select(Message.status).where(Message.direction == "inbound")).all()
    assert set(inbound) == {MessageStatus.RECEIVED}
    replies = db.scalars(
        select(Message)
        .where(Message.direction == "outbound", Message.author == "bot")
        .order_by(Message.id)
    ).all()
    assert [m.body for m in replies] == [first, "echo: deux", "echo: trois"]
    assert all(m.provider_id and m.status == "queued" for m in replies)  # sent, not inline


def test_replay_stops_while_rasa_is_still_down(
    client: TestClient, db: Session, rasa: FakeRasa, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    rasa.down = True
    post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, "un"))

    client_ = client_from_settings()
    try:
        assert replay_all(db, client_) == 0
    finally:
        client_.close()

    assert twilio.requests == []
    assert (
        db.scalars(select(Message.status).where(Message.body == "un")).one() == "pending_assistant"
    )


@pytest.fixture
def committed(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[sessionmaker[Session]]:
    """Real sessions on separate connections (commits are visible across threads); emptied after."""
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    monkeypatch.setattr(db_session, "get_sessionmaker", lambda: factory)
    try:
        yield factory
    finally:
        with engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())


def test_concurrent_duplicate_webhooks_are_processed_once(
    committed: sessionmaker[Session], settings: Settings, rasa: FakeRasa
) -> None:
    from relance.app import create_app

    with committed() as setup:
        make_debtor(setup, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
        setup.commit()

    def slow_answer(text: str) -> list[dict[str, str]]:
        time.sleep(0.3)  # keep the first request busy while the duplicates arrive
        return [{"text": f"echo: {text}"}]

    rasa.default = slow_answer
    fields = sms_fields(DEBTOR_PHONE, "je paierai vendredi")
    with (
        TestClient(create_app(settings), raise_server_exceptions=False) as client,
        ThreadPoolExecutor(max_workers=5) as pool,
    ):
        responses = list(pool.map(lambda _: post(client, "/twilio/sms", fields), range(5)))

    assert [r.status_code for r in responses] == [200] * 5
    assert len({r.text for r in responses}) == 1
    assert message_texts(responses[0]) == ["echo: je paierai vendredi"]
    assert rasa.texts() == ["je paierai vendredi"]
    with committed() as check:
        assert check.scalar(select(func.count()).select_from(WebhookEvent)) == 1
        inbound = check.scalars(select(Message).where(Message.direction == "inbound")).all()
        assert len(inbound) == 1 and inbound[0].provider_id == fields["MessageSid"]
