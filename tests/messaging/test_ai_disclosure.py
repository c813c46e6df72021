"""The first message of a conversation on each channel says it comes from an automated assistant
(EU AI Act art. 50): the engine checks it whatever the template says, and mends or refuses it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

import twilio_edge.gateway
from relance.conversations.ports import DeliveryError
from relance.conversations.repository import conversation_for_debtor
from relance.db.base import utcnow
from relance.db.models import AuditEvent, Contact, Conversation, Message
from relance.nlg import channel_text
from tests.factories import make_debtor
from tests.support.channels import DEBTOR_PHONE
from tests.support.twilio_recorder import TwilioRecorder
from twilio_edge.gateway import TwilioGateway


def _fresh(db: Session, channel: str) -> tuple[Conversation, Contact]:
    debtor = make_debtor(
        db, phone=DEBTOR_PHONE, channels=("sms", "voice", "whatsapp"), postcode="75011"
    )
    contact = db.scalars(
        select(Contact).where(Contact.debtor_id == debtor.id, Contact.channel == channel)
    ).one()
    return conversation_for_debtor(db, debtor), contact


def _sentence(db: Session) -> str:
    return channel_text.text(db, "utter_ai_disclosure_sentence", language="fr", channel="sms")


def test_first_sms_without_the_disclosure_gets_it_in_front_then_never_again(
    db: Session, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    conversation, contact = _fresh(db, "sms")
    first = gateway.send_text(
        db,
        conversation=conversation,
        contact=contact,
        text="Rappel : la facture F-1 est échue.",
        author="bot",
    )
    gateway.send_text(
        db, conversation=conversation, contact=contact, text="Encore moi.", author="bot"
    )
    bodies = [r.field("Body") for r in twilio.messages()]
    assert bodies == [_sentence(db) + " Rappel : la facture F-1 est échue.", "Encore moi."]
    assert first.body == bodies[0]  # the transcript shows what the debtor received
    assert conversation.disclosed_channels == ["sms"]


def test_first_sms_that_already_says_it_is_sent_as_written(
    db: Session, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    conversation, contact = _fresh(db, "sms")
    text = "Bonjour, ici l'assistant automatique de Relance Demo SAS. Répondez à ce message."
    gateway.send_text(db, conversation=conversation, contact=contact, text=text, author="bot")
    assert [r.field("Body") for r in twilio.messages()] == [text]
    assert conversation.disclosed_channels == ["sms"]


def test_disclosure_is_owed_again_on_a_new_channel(
    db: Session, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    conversation, whatsapp = _fresh(db, "whatsapp")
    conversation.disclosed_channels = ["sms"]
    db.add(
        Message(
            conversation_id=conversation.id,
            direction="inbound",
            channel="whatsapp",
            author="debtor",
            body="Bonjour",
            address=whatsapp.address,
            status="received",
            created_at=utcnow() - timedelta(hours=1),
        )
    )  # the 24 h window is open
    db.flush()
    gateway.send_text(
        db, conversation=conversation, contact=whatsapp, text="Bonjour !", author="bot"
    )
    [request] = twilio.messages()
    assert request.field("Body") == _sentence(db) + " Bonjour !"
    assert conversation.disclosed_channels == ["sms", "whatsapp"]


def test_whatsapp_template_outside_the_window_says_it_is_an_automated_assistant(
    db: Session, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    conversation, contact = _fresh(db, "whatsapp")
    message = gateway.send_text(
        db, conversation=conversation, contact=contact, text="Votre facture est due", author="bot"
    )
    [request] = twilio.messages()
    assert request.field("ContentSid")  # the approved template, not free text
    assert "assistant automatique de Relance Demo SAS" in message.body
    assert conversation.disclosed_channels == ["whatsapp"]


def test_whatsapp_template_without_the_disclosure_is_refused(
    db: Session, twilio: TwilioRecorder, gateway: TwilioGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation, contact = _fresh(db, "whatsapp")
    # The template as it was worded before: no word of an automated assistant.
    monkeypatch.setattr(
        twilio_edge.gateway,
        "render",
        lambda *a, **k: (
            "Bonjour, Relance Demo SAS a un message pour vous concernant votre compte. "
            "Répondez à ce message pour le consulter."
        ),
    )
    with pytest.raises(DeliveryError) as raised:
        gateway.send_text(
            db,
            conversation=conversation,
            contact=contact,
            text="Votre facture est due",
            author="bot",
        )
    assert raised.value.code == "no_ai_disclosure" and raised.value.retryable is False
    assert twilio.messages() == [] and not conversation.disclosed_channels
    assert db.scalars(
        select(AuditEvent).where(AuditEvent.action == "message.blocked_no_ai_disclosure")
    ).one()


def test_a_disclosure_sentence_edited_into_silence_blocks_the_first_text(
    db: Session, twilio: TwilioRecorder, gateway: TwilioGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If an edit leaves the sentence without the phrase, the first text is refused (the engine
    never sends a first message it cannot make disclose), with a reason, not a crash."""
    import relance.compliance.disclosure as disclosure_module

    conversation, contact = _fresh(db, "sms")
    real = disclosure_module.render

    def edited(templates, name, **kw):  # type: ignore[no-untyped-def]
        if name == disclosure_module.SENTENCE:
            return "Bonjour."
        return real(templates, name, **kw)

    monkeypatch.setattr(disclosure_module, "render", edited)
    with pytest.raises(DeliveryError) as raised:
        gateway.send_text(
            db, conversation=conversation, contact=contact, text="Rappel.", author="bot"
        )
    assert raised.value.code == "no_ai_disclosure" and twilio.messages() == []
    assert db.scalars(
        select(AuditEvent).where(AuditEvent.action == "message.blocked_no_ai_disclosure")
    ).one()
