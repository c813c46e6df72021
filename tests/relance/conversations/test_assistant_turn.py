"""A turn is refused, not half-run, when the action server is down (Rasa itself would answer 200
with an empty or partial reply): holding reply, message kept, rewind of a half-run turn, and the
replay answers once the action server is back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.conversations.assistant_turn import ActionServerProbe, send_turn, trigger_turn
from relance.conversations.replay import replay_all
from relance.db.models import Conversation, Message
from relance.db.models.enums import MessageStatus
from relance.nlg import channel_text
from relance.rasa_client import AssistantUnavailable, BotMessage, client_from_settings
from relance.settings import Settings, get_settings
from tests.factories import make_debtor
from tests.support.channels import DEBTOR_PHONE, gateway, rasa, twilio  # noqa: F401
from tests.support.fake_action_server import FakeActionServer
from tests.support.fake_rasa import FakeRasa
from tests.support.twilio_recorder import TwilioRecorder
from tests.support.twilio_signing import post, sms_fields
from tests.support.twiml import message_texts
from twilio_edge.gateway import TwilioGateway

HOLDING_FR = "Merci pour votre message. Notre assistant est momentanément indisponible"


@pytest.fixture
def actions(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeActionServer]:
    server = FakeActionServer()
    monkeypatch.setenv("ACTION_SERVER_URL", server.url)
    get_settings.cache_clear()
    try:
        yield server
    finally:
        server.stop()


class StubRasa:
    """Records what the turn guard asks of Rasa."""

    def __init__(self, on_message: Any = None, last_user: dict[str, Any] | None = None) -> None:
        self.sent: list[str] = []
        self.events: list[list[dict[str, Any]]] = []
        self.calls: list[str] = []
        self.last_user = last_user
        self._on_message = on_message

    def send_message(self, sender_id: str, text: str, metadata: dict[str, Any]) -> list[BotMessage]:
        self.calls.append("send")
        self.sent.append(text)
        if self._on_message:
            self._on_message()
        return [BotMessage(text="Votre solde est de 1 234,56 €")]

    def append_events(self, sender_id: str, events: list[dict[str, Any]]) -> None:
        self.calls.append("events")
        self.events.append(events)

    def last_user_metadata(self, sender_id: str) -> dict[str, Any] | None:
        self.calls.append("tracker")
        return self.last_user

    def trigger_intent(
        self, sender_id: str, intent: str, entities: dict[str, Any] | None = None
    ) -> list[BotMessage]:
        return self.send_message(sender_id, f"/{intent}", {})


def _disclosed(text: str, db: Session) -> str:
    sentence = channel_text.text(db, "utter_ai_disclosure_sentence", language="fr", channel="sms")
    return f"{sentence} {text}"


def test_action_server_down_before_the_turn_nothing_reaches_rasa(
    actions: FakeActionServer,
) -> None:
    actions.up = False
    stub = StubRasa()
    with pytest.raises(AssistantUnavailable):
        send_turn(stub, "+33600000000", "Combien je dois ?", {}, ActionServerProbe(actions.url))  # type: ignore[arg-type]
    assert stub.sent == [] and stub.events == []


def test_action_server_dying_mid_turn_rewinds_and_drops_the_half_turn(
    actions: FakeActionServer,
) -> None:
    stub = StubRasa(on_message=lambda: setattr(actions, "up", False))
    with pytest.raises(AssistantUnavailable):
        send_turn(stub, "+33600000000", "Combien je dois ?", {}, ActionServerProbe(actions.url))  # type: ignore[arg-type]
    assert stub.sent == ["Combien je dois ?"]
    assert stub.events == [[{"event": "rewind"}]]


def test_healthy_action_server_passes_the_replies_through(actions: FakeActionServer) -> None:
    stub = StubRasa()
    replies = send_turn(stub, "+33600000000", "Bonjour", {}, ActionServerProbe(actions.url))  # type: ignore[arg-type]
    assert [r.text for r in replies] == ["Votre solde est de 1 234,56 €"]
    assert stub.events == []


def test_trigger_with_the_action_server_down_never_reaches_rasa(actions: FakeActionServer) -> None:
    actions.up = False
    stub = StubRasa()
    with pytest.raises(AssistantUnavailable):
        trigger_turn(stub, "debtor-1", "EXTERNAL_reminder", {}, ActionServerProbe(actions.url))
    assert stub.calls == []


def test_trigger_whose_actions_died_midway_is_rewound_and_refused(
    actions: FakeActionServer,
) -> None:
    """An outbound reminder must not go out as whatever Rasa said without its custom action."""
    stub = StubRasa(on_message=lambda: setattr(actions, "up", False))
    with pytest.raises(AssistantUnavailable):
        trigger_turn(stub, "debtor-1", "EXTERNAL_reminder", {}, ActionServerProbe(actions.url))
    assert stub.sent == ["/EXTERNAL_reminder"] and stub.events == [[{"event": "rewind"}]]
    healthy = StubRasa()
    actions.up = True
    replies = trigger_turn(
        healthy, "debtor-1", "EXTERNAL_reminder", {}, ActionServerProbe(actions.url)
    )
    assert [r.text for r in replies] == ["Votre solde est de 1 234,56 €"]


def test_replayed_message_already_in_the_tracker_is_rewound_before_it_is_sent_again() -> None:
    stub = StubRasa(last_user={"message_id": "42", "channel": "sms"})
    send_turn(stub, "+33600000000", "oui", {"message_id": "42"}, None, replay=True)  # type: ignore[arg-type]
    assert stub.calls == ["tracker", "events", "send"]
    assert stub.events == [[{"event": "rewind"}]]


@pytest.mark.parametrize("last_user", [None, {"message_id": "41"}, {}])
def test_replayed_message_not_in_the_tracker_leaves_the_earlier_turns_alone(
    last_user: dict[str, Any] | None,
) -> None:
    """Kept while Rasa was down: it never got there, and the previous turn must stay."""
    stub = StubRasa(last_user=last_user)
    send_turn(stub, "+33600000000", "oui", {"message_id": "42"}, None, replay=True)  # type: ignore[arg-type]
    assert stub.calls == ["tracker", "send"] and stub.events == []


def test_a_fresh_message_does_not_read_the_tracker() -> None:
    stub = StubRasa(last_user={"message_id": "42"})
    send_turn(stub, "+33600000000", "oui", {"message_id": "42"}, None)  # type: ignore[arg-type]
    assert stub.calls == ["send"]


def test_turn_rasa_ran_after_the_api_gave_up_is_replayed_once(
    client: TestClient,
    db: Session,
    rasa: FakeRasa,  # noqa: F811
    twilio: TwilioRecorder,  # noqa: F811
    gateway: TwilioGateway,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Read timeout: Rasa stored and ran the turn, the api never saw the answer. The message is
    kept and replayed; the replay rewinds the first run, so the tracker holds the turn once."""
    monkeypatch.setenv("RASA_TIMEOUT_SECONDS", "0.3")
    get_settings.cache_clear()
    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    rasa.script["Oui je confirme"] = [{"text": "C'est noté."}]
    rasa.delay = 1.0
    held = message_texts(post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, "Oui je confirme")))
    assert len(held) == 1 and held[0].startswith(HOLDING_FR)
    sender = db.scalar(select(Conversation.sender_id))
    assert rasa.tracker_texts(sender) == ["Oui je confirme"], "Rasa ran the turn"
    kept = db.scalar(select(Message).where(Message.body == "Oui je confirme"))
    assert kept is not None and kept.status == MessageStatus.PENDING_ASSISTANT

    time.sleep(1.0)  # the slow turn finishes in Rasa
    rasa.delay = 0.0
    assistant = client_from_settings()
    try:
        assert replay_all(db, assistant) == 1
    finally:
        assistant.close()
    assert rasa.rewinds == [sender]
    assert rasa.texts() == ["Oui je confirme", "Oui je confirme"]
    assert rasa.tracker_texts(sender) == ["Oui je confirme"], "once in the tracker, not twice"
    # The first text the gateway sends in this conversation: the AI disclosure in front.
    assert [r.field("Body") for r in twilio.messages()] == [_disclosed("C'est noté.", db)]
    metadata = rasa.trackers[sender][-1]["metadata"]
    assert metadata["message_id"] == str(kept.id)


def test_unreachable_action_server_counts_as_down() -> None:
    assert ActionServerProbe("http://127.0.0.1:9").is_up() is False


def test_sms_while_action_server_down_gets_holding_reply_then_replay_answers_once(
    client: TestClient,
    db: Session,
    rasa: FakeRasa,  # noqa: F811
    twilio: TwilioRecorder,  # noqa: F811
    gateway: TwilioGateway,  # noqa: F811
    actions: FakeActionServer,
) -> None:
    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    # Rasa answers 200 whatever happens to its actions: the half-done reply must never go out.
    rasa.default = lambda text: [{"text": f"half-run answer to {text}"}]
    rasa.script["Bonjour"] = [{"text": "Bonjour !"}]
    assert message_texts(post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, "Bonjour"))) == [
        "Bonjour !"
    ]

    actions.up = False
    held = message_texts(post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, "Combien ?")))
    assert len(held) == 1 and held[0].startswith(HOLDING_FR)
    assert rasa.texts() == ["Bonjour"], "nothing reaches Rasa while its actions cannot run"

    # Down during the turn: Rasa took the message, the action server died meanwhile.
    actions.up = True
    rasa.default = lambda text: (setattr(actions, "up", False), [{"text": f"half {text}"}])[1]
    held = message_texts(post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, "75011")))
    assert len(held) == 1 and held[0].startswith(HOLDING_FR)
    pending = db.scalars(
        select(Message.body)
        .where(Message.status == MessageStatus.PENDING_ASSISTANT)
        .order_by(Message.id)
    ).all()
    assert pending == ["Combien ?", "75011"]
    outbound = db.scalars(select(Message.body).where(Message.direction == "outbound")).all()
    assert not any(body.startswith("half") for body in outbound)

    actions.up = True
    rasa.default = lambda text: [{"text": f"real answer to {text}"}]
    assistant = client_from_settings()
    try:
        assert replay_all(db, assistant) == 2
        assert replay_all(db, assistant) == 0
    finally:
        assistant.close()
    assert [r.field("Body") for r in twilio.messages()] == [
        _disclosed("real answer to Combien ?", db),  # first text the gateway sends
        "real answer to 75011",
    ]


def test_replay_holds_no_transaction_while_the_assistant_works(
    tmp_path: Any, settings: Settings
) -> None:
    """The actions write during the turn: on SQLite an open transaction in the replaying process
    would hold the write lock and the turn would time out (found by the e2e fault test)."""
    from sqlalchemy.orm import sessionmaker

    from relance.conversations.service import replay_pending
    from relance.db.base import Base
    from relance.db.models import Contact, Conversation, Debtor
    from relance.db.session import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'replay.db'}")
    Base.metadata.create_all(engine)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory() as setup:
        debtor = Debtor(customer_number="C-REPLAY", name="Camille", language="fr", postcode="1")
        setup.add(debtor)
        setup.flush()
        setup.add(Contact(debtor_id=debtor.id, channel="sms", address=DEBTOR_PHONE))
        conversation = Conversation(debtor_id=debtor.id, sender_id="debtor-r", language="fr")
        setup.add(conversation)
        setup.flush()
        setup.add(
            Message(conversation_id=conversation.id, direction="inbound", channel="sms",
                    author="debtor", body="Combien ?", status=MessageStatus.PENDING_ASSISTANT)
        )  # fmt: skip
        setup.commit()
        conversation_id = conversation.id

    session = factory()
    seen: list[bool] = []

    class Watching(StubRasa):
        def send_message(self, *args: Any) -> list[BotMessage]:
            seen.append(session.in_transaction())
            return super().send_message(*args)

    try:
        replayed = replay_pending(session, Watching(), conversation_id, lambda *_: None)  # type: ignore[arg-type]
    finally:
        session.close()
        engine.dispose()
    assert replayed == 1
    assert seen == [False]
