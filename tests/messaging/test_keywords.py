"""STOP / START / HELP (and French forms) on SMS and WhatsApp."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from messaging.keywords import Keyword, match
from relance.contacts import service as contacts
from relance.conversations.ports import DeliveryError
from relance.conversations.repository import conversation_for_debtor
from relance.db.models import AuditEvent, Contact, Handoff, Message
from relance.nlg import channel_text
from tests.factories import make_debtor
from tests.support.channels import DEBTOR_PHONE
from tests.support.fake_rasa import FakeRasa
from tests.support.twilio_recorder import TwilioRecorder
from tests.support.twilio_signing import post, sms_fields
from tests.support.twiml import message_texts
from twilio_edge.gateway import TwilioGateway


def _sms_contact(db: Session) -> Contact:
    return db.scalars(select(Contact).where(Contact.channel == "sms")).one()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("STOP", Keyword.OPT_OUT),
        ("stop", Keyword.OPT_OUT),
        (" Stop. ", Keyword.OPT_OUT),
        ("STOPALL", Keyword.OPT_OUT),
        ("unsubscribe", Keyword.OPT_OUT),
        ("CANCEL", Keyword.OPT_OUT),
        ("end", Keyword.OPT_OUT),
        ("Quit", Keyword.OPT_OUT),
        ("ARRET", Keyword.OPT_OUT),
        ("Arrêt", Keyword.OPT_OUT),
        ("STOP SMS", Keyword.OPT_OUT),
        ("START", Keyword.OPT_IN),
        ("unstop", Keyword.OPT_IN),
        ("HELP", Keyword.HELP),
        ("aide", Keyword.HELP),
        ("stop calling me at work", None),
        ("je veux arrêter de payer", None),
        ("", None),
    ],
)
def test_keywords_match_the_whole_message_only(body: str, expected: Keyword | None) -> None:
    found = match(body)
    assert (found[0] if found else None) == expected


def test_stop_opts_out_with_one_confirmation_and_blocks_outbound(
    client: TestClient, db: Session, rasa: FakeRasa, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    debtor = make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")

    first = post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, "STOP"))
    again = post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, "stop"))

    assert message_texts(first) == [
        channel_text.text(db, "utter_opted_out", language="fr", channel="sms")
    ]
    assert message_texts(again) == []  # one confirmation, not one per STOP
    assert rasa.received == []  # keywords never reach the assistant
    contact = _sms_contact(db)
    assert contact.opted_out_at is not None and not contact.reachable
    events = db.scalars(select(AuditEvent).where(AuditEvent.action == "contact.opted_out")).all()
    assert len(events) == 1 and events[0].debtor_id == debtor.id
    assert events[0].details["keyword"] == "STOP"

    conversation = conversation_for_debtor(db, debtor)
    with pytest.raises(DeliveryError) as refused:
        gateway.send_text(
            db, conversation=conversation, contact=contact, text="Rappel", author="bot"
        )
    assert refused.value.code == "opted_out" and refused.value.retryable is False
    assert twilio.requests == []  # nothing left for Twilio


def test_french_arret_is_confirmed_in_french_even_for_an_english_debtor(
    client: TestClient, db: Session, rasa: FakeRasa
) -> None:
    make_debtor(db, language="en", phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")

    [confirmation] = message_texts(post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, "ARRÊT")))

    assert confirmation == channel_text.text(db, "utter_opted_out", language="fr", channel="sms")
    assert confirmation != channel_text.text(db, "utter_opted_out", language="en", channel="sms")
    assert _sms_contact(db).opted_out_at is not None


def test_stop_on_whatsapp_opts_out_whatsapp_only(
    client: TestClient, db: Session, rasa: FakeRasa
) -> None:
    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice", "whatsapp"), postcode="75011")

    post(client, "/twilio/sms", sms_fields(f"whatsapp:{DEBTOR_PHONE}", "UNSUBSCRIBE"))

    by_channel = {c.channel: c.opted_out_at for c in db.scalars(select(Contact))}
    assert by_channel["whatsapp"] is not None
    assert by_channel["sms"] is None and by_channel["voice"] is None


def test_stop_from_a_voice_only_number_records_an_sms_opt_out(
    client: TestClient, db: Session, rasa: FakeRasa
) -> None:
    debtor = make_debtor(db, channels=("voice",), phone=DEBTOR_PHONE, postcode="75011")

    post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, "STOP"))

    sms = _sms_contact(db)
    assert sms.debtor_id == debtor.id and sms.opted_out_at is not None


def test_start_resubscribes(client: TestClient, db: Session, rasa: FakeRasa) -> None:
    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, "STOP"))

    [confirmation] = message_texts(post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, "START")))

    assert confirmation == channel_text.text(db, "utter_opted_in", language="fr", channel="sms")
    assert _sms_contact(db).opted_out_at is None
    actions = db.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["contact.opted_out", "contact.opted_in"]


def test_help_says_who_we_are_and_how_to_reach_a_person(
    client: TestClient, db: Session, rasa: FakeRasa
) -> None:
    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")

    [text] = message_texts(post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, "AIDE")))

    assert "Relance Demo SAS" in text and "+33 1 84 00 00 00" in text
    assert rasa.received == []
    bodies = [m.body for m in db.scalars(select(Message).order_by(Message.id))]
    assert bodies == ["AIDE", text]  # both sides kept in the transcript


def test_texts_from_an_opted_out_debtor_are_kept_but_not_answered(
    client: TestClient, db: Session, rasa: FakeRasa
) -> None:
    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, "STOP"))

    response = post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, "en fait je veux payer"))

    assert message_texts(response) == []  # the carrier refuses any message after STOP anyway
    assert rasa.received == []
    kept = db.scalars(select(Message).where(Message.body == "en fait je veux payer")).one()
    assert kept.direction == "inbound"
    # ...and a person has it: not lost in a transcript nobody opens.
    handoff = db.scalars(select(Handoff)).one()
    assert (handoff.reason, handoff.details) == ("opted_out_message", "en fait je veux payer")


def test_after_an_opt_out_said_in_conversation_the_debtor_is_told_once_who_will_answer(
    client: TestClient, db: Session, rasa: FakeRasa
) -> None:
    """Simulator finding: "stop bothering me" opted out, then "i want to talk to a human" got no
    answer and reached nobody. The assistant stays quiet, a collector gets the conversation, and
    the debtor is told so once (not at every message)."""
    debtor = make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    contact = _sms_contact(db)
    contacts.opt_out(db, contact, source="sms", keyword=None)  # what action_stop_contact does
    db.commit()

    first = message_texts(
        post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, "je veux parler à quelqu'un"))
    )
    second = message_texts(post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, "allo ?")))

    told = channel_text.text(
        db, "utter_opted_out_collector_will_answer", language="fr", channel="sms"
    )
    assert first == [told]
    assert second == []
    assert rasa.received == []
    handoff = db.scalars(select(Handoff)).one()
    assert handoff.conversation.debtor_id == debtor.id
    assert handoff.conversation.mode == "human"
    bodies = [m.body for m in db.scalars(select(Message).order_by(Message.id))]
    assert bodies == ["je veux parler à quelqu'un", told, "allo ?"]
    assert _sms_contact(db).opted_out_at is not None  # still opted out: no reminder goes out


def test_a_vulnerable_debtor_writing_after_an_opt_out_is_handed_off_first(
    client: TestClient, db: Session, rasa: FakeRasa
) -> None:
    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, "STOP"))

    post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, "mon mari est décédé le mois dernier"))

    handoff = db.scalars(select(Handoff)).one()
    assert handoff.reason == "vulnerability" and handoff.priority == 3


def test_a_sentence_with_stop_in_it_goes_to_the_assistant(
    client: TestClient, db: Session, rasa: FakeRasa
) -> None:
    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")

    post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, "stop calling me at work"))

    assert rasa.texts() == ["stop calling me at work"]
    assert _sms_contact(db).opted_out_at is None


def test_start_when_already_subscribed_is_confirmed_and_changes_nothing(
    client: TestClient, db: Session, rasa: FakeRasa
) -> None:
    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")

    texts = message_texts(post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, "START")))

    assert texts == [channel_text.text(db, "utter_opted_in", language="fr", channel="sms")]
    assert db.scalars(select(AuditEvent)).all() == [] and rasa.received == []


def test_help_from_an_unknown_number_is_answered_without_storing_anything(
    client: TestClient, db: Session, rasa: FakeRasa
) -> None:
    texts = message_texts(post(client, "/twilio/sms", sms_fields("+33611223344", "HELP")))

    assert texts == [channel_text.text(db, "utter_help", language="en", channel="sms")]
    assert db.scalars(select(Message)).all() == [] and rasa.received == []
    assert db.scalars(select(AuditEvent.action)).all() == ["inbound.unknown_number_keyword"]
