from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.conversations.language import guess_language
from relance.conversations.service import Inbound, handle_inbound, replay_pending
from relance.db.models import AuditEvent, Conversation, Debtor, Message
from relance.db.models.enums import ConversationMode, MessageStatus
from relance.rasa_client import AssistantUnavailable, BotMessage
from tests.factories import make_debtor


class FakeRasa:
    """Answers 'echo: <text>' unless told to be down; records what it was sent."""

    def __init__(self) -> None:
        self.down = False
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def send_message(self, sender_id: str, text: str, metadata: dict[str, Any]) -> list[BotMessage]:
        if self.down:
            raise AssistantUnavailable("connection refused")
        self.sent.append((sender_id, text, metadata))
        return [BotMessage(text=f"echo: {text}")]

    def last_user_metadata(self, sender_id: str) -> dict[str, Any] | None:
        """As Rasa's tracker would say: only turns that reached it count."""
        return next((m for s, _t, m in reversed(self.sent) if s == sender_id), None)

    def append_events(self, sender_id: str, events: list[dict[str, Any]]) -> None:
        raise AssertionError(f"nothing to rewind here: {events}")


def _debtor(db: Session, language: str = "fr") -> Debtor:
    return make_debtor(
        db,
        channels=("sms", "voice"),
        phone="+33639981111",
        customer_number="C-1",
        name="Jean Dubois",
        language=language,
        postcode="75015",
    )


def test_known_debtor_message_goes_to_rasa_with_metadata_and_is_stored(db: Session) -> None:
    debtor = _debtor(db)
    rasa = FakeRasa()
    result = handle_inbound(
        db, rasa, Inbound(channel="sms", address="+33639981111", body="bonjour", provider_id="SM1")
    )
    assert result.status == "answered" and result.replies == ["echo: bonjour"]
    sender_id, _text, metadata = rasa.sent[0]
    assert sender_id == f"debtor-{debtor.id}"
    assert metadata == {
        "channel": "sms",
        "language": "fr",
        "debtor_id": str(debtor.id),
        "conversation_id": str(result.conversation_id),
        "message_id": str(result.inbound_message_id),
    }
    bodies = [(m.direction, m.body) for m in db.scalars(select(Message).order_by(Message.id))]
    assert bodies == [("inbound", "bonjour"), ("outbound", "echo: bonjour")]


def test_voice_and_sms_share_one_conversation(db: Session) -> None:
    _debtor(db)
    rasa = FakeRasa()
    first = handle_inbound(db, rasa, Inbound(channel="sms", address="+33639981111", body="allo"))
    second = handle_inbound(db, rasa, Inbound(channel="voice", address="+33639981111", body="oui"))
    assert first.conversation_id == second.conversation_id
    assert db.scalar(select(Conversation.last_channel)) == "voice"


def test_unknown_number_gets_polite_reply_discloses_nothing_and_is_logged(db: Session) -> None:
    _debtor(db)
    result = handle_inbound(
        db, FakeRasa(), Inbound(channel="sms", address="+33639989999", body="hello who is this")
    )
    assert result.status == "unknown_number" and len(result.replies) == 1
    assert "Dubois" not in result.replies[0] and "€" not in result.replies[0]
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "inbound.unknown_number")
    ).one()
    assert event.details["address"] == "+33639989999"
    assert db.scalar(select(Message.id)) is None


def test_rasa_down_keeps_message_and_replays_in_order(db: Session) -> None:
    _debtor(db)
    rasa = FakeRasa()
    rasa.down = True
    one = handle_inbound(db, rasa, Inbound(channel="sms", address="+33639981111", body="un"))
    two = handle_inbound(db, rasa, Inbound(channel="sms", address="+33639981111", body="deux"))
    assert one.status == two.status == "holding" and one.replies and two.replies
    pending = db.scalars(
        select(Message.body)
        .where(Message.status == MessageStatus.PENDING_ASSISTANT)
        .order_by(Message.id)
    )
    assert list(pending) == ["un", "deux"]

    rasa.down = False
    delivered: list[list[str]] = []
    count = replay_pending(
        db, rasa, one.conversation_id, lambda _c, _ch, texts: delivered.append(texts)
    )
    assert count == 2
    assert [text for _s, text, _m in rasa.sent] == ["un", "deux"]
    assert delivered == [["echo: un"], ["echo: deux"]]


def test_new_message_after_outage_replays_backlog_first(db: Session) -> None:
    _debtor(db)
    rasa = FakeRasa()
    rasa.down = True
    handle_inbound(db, rasa, Inbound(channel="sms", address="+33639981111", body="avant"))
    rasa.down = False
    result = handle_inbound(db, rasa, Inbound(channel="sms", address="+33639981111", body="après"))
    assert [text for _s, text, _m in rasa.sent] == ["avant", "après"]
    assert result.replies == ["echo: avant", "echo: après"]


def test_conversation_owned_by_collector_is_not_answered_by_bot(db: Session) -> None:
    debtor = _debtor(db)
    rasa = FakeRasa()
    handle_inbound(db, rasa, Inbound(channel="sms", address="+33639981111", body="bonjour"))
    conversation = db.scalars(select(Conversation).where(Conversation.debtor_id == debtor.id)).one()
    conversation.mode = ConversationMode.HUMAN
    result = handle_inbound(
        db, rasa, Inbound(channel="sms", address="+33639981111", body="je veux parler à quelqu'un")
    )
    assert result.status == "held_for_collector" and result.replies == []
    assert len(rasa.sent) == 1
    held = db.scalars(select(Message).where(Message.status == MessageStatus.HELD)).one()
    assert held.body.startswith("je veux")


def test_debtor_writing_in_english_is_answered_in_english(db: Session) -> None:
    _debtor(db, language="fr")
    rasa = FakeRasa()
    handle_inbound(
        db,
        rasa,
        Inbound(
            channel="sms",
            address="+33639981111",
            body="Hello, I already paid the invoice last week",
        ),
    )
    assert rasa.sent[0][2]["language"] == "en"


def test_language_guess_is_conservative() -> None:
    assert guess_language("Bonjour, je ne peux pas payer ce mois-ci") == "fr"
    assert guess_language("I can't pay this month, sorry") == "en"
    assert guess_language("ok") is None
    assert guess_language("75015") is None


def test_the_first_message_held_for_a_collector_is_acknowledged_once(db: Session) -> None:
    """Simulator finding: after a plan went to a collector for approval, "et en 6 fois ?", "ok"
    and "merci" got no answer at all. The first one is acknowledged; later ones are not (the
    debtor knows), nor anything once the collector has written (they are talking)."""
    from relance.handoff.service import create_handoff
    from relance.nlg.channel_text import text

    debtor = _debtor(db)
    rasa = FakeRasa()
    handle_inbound(db, rasa, Inbound(channel="sms", address="+33639981111", body="bonjour"))
    conversation = db.scalars(select(Conversation).where(Conversation.debtor_id == debtor.id)).one()
    create_handoff(db, conversation, reason="plan_approval")

    def say(body: str) -> list[str]:
        inbound = Inbound(channel="sms", address="+33639981111", body=body)
        return handle_inbound(db, rasa, inbound).replies

    told = text(db, "utter_held_for_collector", language="fr", channel="sms")
    assert say("et en 6 fois ?") == [told]
    assert say("ok") == []
    assert len(rasa.sent) == 1  # the assistant saw none of them
    held = db.scalars(select(Message).where(Message.status == MessageStatus.HELD)).all()
    assert [m.body for m in held] == ["et en 6 fois ?", "ok"]

    # The collector gives the conversation back; a later handoff is acknowledged again, once,
    # unless the collector has already written in it.
    handoff = create_handoff(db, conversation, reason="plan_approval")
    handoff.status = "closed"
    conversation.mode = ConversationMode.BOT
    db.flush()
    create_handoff(db, conversation, reason="requested")
    assert say("vous êtes là ?") == [told]
    second = create_handoff(db, conversation, reason="requested")
    second.status = "closed"
    db.flush()
    create_handoff(db, conversation, reason="requested")
    db.add(
        Message(
            conversation_id=conversation.id,
            direction="outbound",
            channel="sms",
            author="collector",
            body="Bonjour, je regarde votre demande.",
            status="sent",
        )
    )
    db.flush()
    assert say("merci") == []  # the collector is there: no acknowledgement
