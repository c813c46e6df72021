"""TwilioGateway against the local recorder: what reaches Twilio's REST API, and what is stored."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.conversations.ports import DeliveryError
from relance.conversations.repository import conversation_for_debtor
from relance.db.base import utcnow
from relance.db.models import AuditEvent, Contact, Conversation, Message
from relance.db.models.enums import ContactStatus
from relance.nlg import channel_text
from relance.settings import get_settings
from tests.factories import make_debtor
from tests.support.channels import DEBTOR_PHONE
from tests.support.fake_rasa import FakeRasa
from tests.support.twilio_recorder import TwilioRecorder
from tests.support.twilio_signing import post, sms_fields
from tests.support.twiml import message_texts
from twilio_edge.gateway import TwilioGateway
from twilio_edge.twilio_http import rebase


def _setup(db: Session, channel: str = "sms") -> tuple[Conversation, Contact]:
    """A conversation that has already said it is an automated assistant on every channel: these
    tests are about transport; the first-message disclosure is tested in test_ai_disclosure."""
    debtor = make_debtor(
        db, phone=DEBTOR_PHONE, channels=("sms", "voice", "whatsapp"), postcode="75011"
    )
    contact = db.scalars(
        select(Contact).where(Contact.debtor_id == debtor.id, Contact.channel == channel)
    ).one()
    conversation = conversation_for_debtor(db, debtor)
    conversation.disclosed_channels = ["sms", "whatsapp", "voice"]
    return conversation, contact


def test_rebase_sends_every_twilio_url_to_the_configured_base() -> None:
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?PageSize=2"
    assert rebase(url, "http://127.0.0.1:8099/") == (
        "http://127.0.0.1:8099/2010-04-01/Accounts/AC1/Messages.json?PageSize=2"
    )


def test_send_text_goes_through_the_official_client_to_the_recorder(
    db: Session, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    conversation, contact = _setup(db)

    message = gateway.send_text(
        db, conversation=conversation, contact=contact, text="Bonjour Camille", author="bot"
    )

    [request] = twilio.messages()
    settings = get_settings()
    assert request.path == f"/2010-04-01/Accounts/{settings.twilio_account_sid}/Messages.json"
    assert request.account_sid_from_auth == settings.twilio_account_sid
    assert request.field("To") == DEBTOR_PHONE and request.field("From") == settings.twilio_sms_from
    assert request.field("Body") == "Bonjour Camille"
    assert request.field("StatusCallback") == "http://testserver/twilio/status"
    assert message.provider_id and message.provider_id.startswith("SM")
    assert (message.direction, message.channel, message.status) == ("outbound", "sms", "queued")
    audit = db.scalars(select(AuditEvent).where(AuditEvent.action == "message.sent")).one()
    assert (
        audit.entity_id == str(message.id) and audit.details["provider_id"] == message.provider_id
    )


def test_long_text_is_split_at_sentence_boundaries(
    db: Session, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    conversation, contact = _setup(db)
    text = " ".join(f"Phrase numéro {i} du rappel détaillé de votre dossier." for i in range(80))

    gateway.send_text(db, conversation=conversation, contact=contact, text=text, author="bot")

    bodies = [r.field("Body") or "" for r in twilio.messages()]
    assert len(bodies) == 3
    assert all(len(b) <= 1600 and b.endswith("dossier.") for b in bodies)
    assert " ".join(bodies) == text
    stored = db.scalars(select(Message).order_by(Message.id)).all()
    assert [m.body for m in stored] == bodies
    assert len({m.provider_id for m in stored}) == 3  # one SID each, for status callbacks
    assert [m.extra["segment"] for m in stored] == [1, 2, 3]


def test_whatsapp_outside_the_session_window_uses_the_approved_template(
    db: Session, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    conversation, contact = _setup(db, "whatsapp")

    message = gateway.send_text(
        db, conversation=conversation, contact=contact, text="Votre facture est due", author="bot"
    )

    [request] = twilio.messages()
    settings = get_settings()
    assert request.field("ContentSid") == settings.twilio_whatsapp_template_sid
    assert json.loads(request.field("ContentVariables") or "") == {"1": settings.creditor_name}
    assert request.field("Body") is None
    assert request.field("From") == settings.twilio_whatsapp_from
    assert request.field("To") == f"whatsapp:{DEBTOR_PHONE}"
    assert message.body == channel_text.text(
        db, "utter_whatsapp_first_contact", language="fr", channel="whatsapp"
    )
    assert message.extra["withheld_texts"] == ["Votre facture est due"]


def test_whatsapp_inside_the_window_sends_free_text(
    db: Session, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    conversation, contact = _setup(db, "whatsapp")
    db.add(
        Message(
            conversation_id=conversation.id,
            direction="inbound",
            channel="whatsapp",
            author="debtor",
            body="Bonjour",
            address=contact.address,
            status="received",
            created_at=utcnow() - timedelta(hours=23),
        )
    )
    db.flush()

    gateway.send_text(
        db, conversation=conversation, contact=contact, text="Bonjour !", author="bot"
    )
    gateway.send_text(
        db,
        conversation=conversation,
        contact=contact,
        text="x",
        author="bot",
        first_contact_template=True,
    )

    first, forced = twilio.messages()
    assert first.field("Body") == "Bonjour !" and first.field("ContentSid") is None
    assert forced.field("ContentSid") == get_settings().twilio_whatsapp_template_sid


def test_whatsapp_window_closes_after_24_hours(
    db: Session, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    conversation, contact = _setup(db, "whatsapp")
    db.add(
        Message(
            conversation_id=conversation.id,
            direction="inbound",
            channel="whatsapp",
            author="debtor",
            body="Bonjour",
            address=contact.address,
            status="received",
            created_at=utcnow() - timedelta(hours=25),
        )
    )
    db.flush()

    gateway.send_text(db, conversation=conversation, contact=contact, text="Bonjour", author="bot")

    assert twilio.messages()[0].field("ContentSid") is not None


@pytest.mark.parametrize(("status", "code"), [(500, 20500), (503, None), (429, 20429)])
def test_server_errors_and_rate_limits_are_retryable(
    db: Session, twilio: TwilioRecorder, gateway: TwilioGateway, status: int, code: int | None
) -> None:
    conversation, contact = _setup(db)
    twilio.fail_next(status, code)

    with pytest.raises(DeliveryError) as failed:
        gateway.send_text(
            db, conversation=conversation, contact=contact, text="Rappel", author="bot"
        )

    assert failed.value.retryable is True
    stored = db.scalars(select(Message)).one()
    assert stored.status == "failed" and stored.provider_id is None
    assert db.get(Contact, contact.id).status == ContactStatus.OK  # not the number's fault


def test_invalid_number_is_a_hard_failure_that_flags_the_contact(
    db: Session, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    conversation, contact = _setup(db)
    twilio.fail_next(400, 21211, "The 'To' number is not a valid phone number.")

    with pytest.raises(DeliveryError) as failed:
        gateway.send_text(
            db, conversation=conversation, contact=contact, text="Rappel", author="bot"
        )

    assert failed.value.retryable is False and failed.value.code == "21211"
    assert contact.status == ContactStatus.FAILING and contact.failure_count == 1
    assert db.scalars(select(Message.error_code)).one() == "21211"


def test_carrier_unsubscribe_is_recorded_as_an_opt_out(
    db: Session, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    conversation, contact = _setup(db)
    twilio.fail_next(400, 21610, "Attempt to send to unsubscribed recipient")

    with pytest.raises(DeliveryError) as failed:
        gateway.send_text(
            db, conversation=conversation, contact=contact, text="Rappel", author="bot"
        )

    assert failed.value.retryable is False
    assert contact.opted_out_at is not None
    with pytest.raises(DeliveryError):
        gateway.send_text(
            db, conversation=conversation, contact=contact, text="Encore", author="bot"
        )
    assert len(twilio.messages()) == 1  # the second send never reached Twilio


def test_timeouts_and_unreachable_api_are_retryable(db: Session, twilio: TwilioRecorder) -> None:
    from twilio.rest import Client

    from twilio_edge.twilio_http import BaseUrlHttpClient

    conversation, contact = _setup(db)
    settings = get_settings()
    slow = TwilioGateway(
        settings,
        Client(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            http_client=BaseUrlHttpClient(twilio.url, timeout=0.3),
        ),
    )
    twilio.delay_next(1.5)
    with pytest.raises(DeliveryError) as timed_out:
        slow.send_text(db, conversation=conversation, contact=contact, text="Rappel", author="bot")
    assert timed_out.value.retryable is True and timed_out.value.code == "timeout"

    nowhere = TwilioGateway(
        settings,
        Client(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            http_client=BaseUrlHttpClient("http://127.0.0.1:9", timeout=2),
        ),
    )
    with pytest.raises(DeliveryError) as unreachable:
        nowhere.send_text(
            db, conversation=conversation, contact=contact, text="Rappel", author="bot"
        )
    assert unreachable.value.retryable is True and unreachable.value.code == "network"


def test_place_call_uses_machine_detection_and_status_callbacks(
    db: Session, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    conversation, contact = _setup(db, "voice")

    message = gateway.place_call(
        db, conversation=conversation, contact=contact, purpose="reminder:friendly"
    )

    [request] = twilio.calls()
    settings = get_settings()
    assert (
        request.field("To") == DEBTOR_PHONE and request.field("From") == settings.twilio_voice_from
    )
    assert request.field("Url") == "http://testserver/twilio/voice?purpose=reminder%3Afriendly"
    assert request.field("MachineDetection") == "Enable"
    assert request.field("StatusCallback") == "http://testserver/twilio/voice/status"
    assert request.form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert message.provider_id and message.provider_id.startswith("CA")
    assert message.channel == "voice" and message.extra["purpose"] == "reminder:friendly"
    assert db.scalars(select(AuditEvent.action)).all() == ["call.placed"]


def test_opted_out_voice_contact_is_never_called(
    db: Session, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    conversation, contact = _setup(db, "voice")
    contact.opted_out_at = utcnow()

    with pytest.raises(DeliveryError):
        gateway.place_call(db, conversation=conversation, contact=contact, purpose="reminder:firm")

    assert twilio.requests == []


def test_whatsapp_texts_held_behind_the_template_are_released_when_the_debtor_replies(
    client: TestClient, db: Session, rasa: FakeRasa, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    conversation, contact = _setup(db, "whatsapp")

    first = gateway.send_text(
        db, conversation=conversation, contact=contact, text="Rappel 1", author="bot"
    )
    second = gateway.send_text(
        db, conversation=conversation, contact=contact, text="Rappel 2", author="bot"
    )

    assert second.id == first.id and len(twilio.messages()) == 1  # one template, not two
    assert first.extra["withheld_texts"] == ["Rappel 1", "Rappel 2"]

    reply = post(client, "/twilio/sms", sms_fields(f"whatsapp:{DEBTOR_PHONE}", "Oui ?"))
    assert message_texts(reply) == ["Rappel 1", "Rappel 2", "echo: Oui ?"]
    again = post(client, "/twilio/sms", sms_fields(f"whatsapp:{DEBTOR_PHONE}", "Merci"))
    assert message_texts(again) == ["echo: Merci"]  # released once

    gateway.send_text(db, conversation=conversation, contact=contact, text="Suite", author="bot")
    assert twilio.messages()[-1].field("Body") == "Suite"  # the window is open now
