"""Every call opens by saying it is an automated assistant (EU AI Act art. 50), whatever the
assistant's opening says: the engine puts the disclosure in front when it is missing."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.conversations.repository import conversation_for_debtor
from relance.db.models import Contact, Message
from relance.nlg import channel_text
from tests.factories import make_debtor
from tests.support.channels import EN_DEBTOR_PHONE
from tests.support.fake_rasa import FakeRasa
from tests.support.twilio_recorder import TwilioRecorder
from tests.support.twilio_signing import call_fields, post
from tests.support.twiml import parse, said
from twilio_edge.gateway import TwilioGateway

OPENING = '/EXTERNAL_reminder{"stage": "friendly"}'


def _call(
    client: TestClient,
    db: Session,
    twilio: TwilioRecorder,
    gateway: TwilioGateway,
    contact: Contact,
) -> list[str]:
    conversation = conversation_for_debtor(db, contact.debtor)
    placed = gateway.place_call(
        db, conversation=conversation, contact=contact, purpose="reminder:friendly"
    )
    request = twilio.calls()[-1]
    fields = call_fields(
        EN_DEBTOR_PHONE, sid=placed.provider_id or "", outbound=True, AnsweredBy="human"
    )
    return said(parse(post(client, request.field("Url") or "", fields)))


def test_every_call_opening_discloses_the_automated_assistant(
    client: TestClient, db: Session, rasa: FakeRasa, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    debtor = make_debtor(
        db, phone=EN_DEBTOR_PHONE, language="en", channels=("sms", "voice"), postcode="75011"
    )
    contact = db.scalars(select(Contact).where(Contact.channel == "voice")).one()
    rasa.script.update({OPENING: [{"text": "Hello. What is your postcode?"}]})
    sentence = channel_text.text(db, "utter_ai_disclosure_sentence", language="en", channel="voice")

    assert _call(client, db, twilio, gateway, contact) == [
        f"{sentence} Hello. What is your postcode?"
    ]
    # The transcript holds what was said.
    bodies = db.scalars(
        select(Message.body).where(
            Message.direction == "outbound", Message.channel == "voice", Message.body != ""
        )
    ).all()
    assert f"{sentence} Hello. What is your postcode?" in bodies
    assert conversation_for_debtor(db, debtor).disclosed_channels == ["voice"]
    # A second call is a new phone conversation: disclosed again.
    assert _call(client, db, twilio, gateway, contact)[0].startswith(sentence)


def test_an_opening_that_already_discloses_is_said_as_written(
    client: TestClient, db: Session, rasa: FakeRasa, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    make_debtor(
        db, phone=EN_DEBTOR_PHONE, language="en", channels=("sms", "voice"), postcode="75011"
    )
    contact = db.scalars(select(Contact).where(Contact.channel == "voice")).one()
    opening = "Hello, this is the automated assistant of Relance Demo SAS. What is your postcode?"
    rasa.script.update({OPENING: [{"text": opening}]})
    assert _call(client, db, twilio, gateway, contact) == [opening]
