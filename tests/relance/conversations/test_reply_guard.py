"""One debtor message never yields more than a few replies, nor the same text twice.

Seen in production: "en 3 fois par mois" after the plan offer brought one "sorry" and nine
handoff messages (the fallback action did not end its turn). The rules are fixed; this guard is
the runtime check that keeps any future dialogue fault from flooding a debtor.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.conversations.reply_guard import MAX_REPLIES_PER_TURN, bound_replies
from relance.conversations.service import Inbound, handle_inbound
from relance.db.models import AuditEvent, Debtor, Message
from relance.rasa_client import BotMessage
from tests.factories import make_contact, make_debtor

SORRY = "Désolé, je n'ai pas compris."
HANDOFF = "Je vous mets en relation avec une personne de notre équipe."


class LoopingRasa:
    """Answers like the looping fallback did: one apology, then the handoff message nine times."""

    def __init__(self, messages: list[BotMessage]) -> None:
        self.messages = messages

    def send_message(self, sender_id: str, text: str, metadata: dict[str, Any]) -> list[BotMessage]:
        return list(self.messages)


LOOP = [
    BotMessage(text=SORRY),
    *[BotMessage(text=HANDOFF, custom={"handoff": True, "reason": "fallback"})] * 9,
]


def _debtor(db: Session) -> Debtor:
    owner = make_debtor(db, postcode="75015")
    make_contact(db, owner, address="+33639981212")
    return owner


def test_the_fallback_loop_reaches_the_debtor_as_two_messages_and_is_audited(db: Session) -> None:
    debtor = _debtor(db)
    result = handle_inbound(
        db,
        LoopingRasa(LOOP),
        Inbound(channel="sms", address="+33639981212", body="en 3 fois par mois"),
    )
    assert result.replies == [SORRY, HANDOFF]
    assert result.custom == [{"handoff": True, "reason": "fallback"}]
    stored = db.scalars(
        select(Message.body).where(Message.direction == "outbound").order_by(Message.id)
    ).all()
    assert stored == [SORRY, HANDOFF]
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "conversation.replies_dropped")
    ).one()
    assert event.debtor_id == debtor.id
    assert event.details["produced"] == 10 and event.details["dropped"] == 8


def test_distinct_replies_beyond_the_limit_are_dropped() -> None:
    many = [BotMessage(text=f"reply {n}") for n in range(10)]
    bounded = bound_replies(many)
    assert [m.text for m in bounded.kept] == [f"reply {n}" for n in range(MAX_REPLIES_PER_TURN)]
    assert len(bounded.dropped) == 10 - MAX_REPLIES_PER_TURN


def test_an_ordinary_turn_is_untouched(db: Session) -> None:
    _debtor(db)
    turn = [
        BotMessage(text="Merci, c'est confirmé."),
        BotMessage(text="Votre solde est de 100,00 €."),
        BotMessage(custom={"payment_url": "https://pay.example/x"}),
    ]
    assert bound_replies(turn).kept == turn
    result = handle_inbound(
        db, LoopingRasa(turn), Inbound(channel="sms", address="+33639981212", body="75015")
    )
    assert result.replies == [turn[0].text, turn[1].text]
    assert (
        db.scalars(
            select(AuditEvent).where(AuditEvent.action == "conversation.replies_dropped")
        ).first()
        is None
    )
