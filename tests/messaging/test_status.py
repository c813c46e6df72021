"""POST /twilio/status: delivery status by MessageSid (and CallSid), idempotent, out-of-order safe."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.conversations.repository import conversation_for_debtor
from relance.db.models import Contact, Message, WebhookEvent
from relance.db.models.enums import ContactStatus
from relance.settings import get_settings
from tests.factories import make_debtor
from tests.support.channels import DEBTOR_PHONE
from tests.support.twilio_recorder import TwilioRecorder
from tests.support.twilio_signing import post
from twilio_edge.gateway import TwilioGateway


def _sent(db: Session, gateway: TwilioGateway, text: str = "Rappel") -> tuple[Message, Contact]:
    debtor = (
        make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
        if not db.scalars(select(Contact)).first()
        else None
    )
    contact = db.scalars(select(Contact).where(Contact.channel == "sms")).one()
    conversation = conversation_for_debtor(db, debtor or contact.debtor)
    message = gateway.send_text(
        db, conversation=conversation, contact=contact, text=text, author="bot"
    )
    return message, contact


def _status(sid: str, status: str, **extra: str) -> dict[str, str]:
    settings = get_settings()
    return {
        "AccountSid": settings.twilio_account_sid,
        "ApiVersion": "2010-04-01",
        "From": settings.twilio_sms_from,
        "To": DEBTOR_PHONE,
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        **extra,
    }


def test_delivery_progress_is_recorded(
    client: TestClient, db: Session, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    message, _contact = _sent(db, gateway)
    for status in ("sent", "delivered"):
        assert (
            post(client, "/twilio/status", _status(message.provider_id or "", status)).status_code
            == 204
        )
    db.refresh(message)
    assert message.status == "delivered"


def test_out_of_order_callbacks_never_move_a_message_back(
    client: TestClient, db: Session, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    message, _contact = _sent(db, gateway)
    sid = message.provider_id or ""
    for status in ("delivered", "sent", "queued", "delivered"):
        assert post(client, "/twilio/status", _status(sid, status)).status_code == 204
    db.refresh(message)
    assert message.status == "delivered"
    assert post(client, "/twilio/status", _status(sid, "read")).status_code == 204
    db.refresh(message)
    assert message.status == "read"


def test_failed_delivery_flags_the_contact_once(
    client: TestClient, db: Session, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    message, contact = _sent(db, gateway)
    sid = message.provider_id or ""
    for status in ("sent", "undelivered", "undelivered", "failed"):
        post(client, "/twilio/status", _status(sid, status, ErrorCode="30005"))
    db.refresh(message)
    db.refresh(contact)
    assert message.status == "undelivered" and message.error_code == "30005"
    assert contact.status == ContactStatus.FAILING and contact.failure_count == 1
    assert not contact.reachable  # the dunning engine moves to another channel


def test_a_later_delivery_clears_the_failing_flag(
    client: TestClient, db: Session, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    first, contact = _sent(db, gateway, "un")
    post(client, "/twilio/status", _status(first.provider_id or "", "failed", ErrorCode="30003"))
    db.refresh(contact)
    assert contact.status == ContactStatus.FAILING

    second, _ = _sent(db, gateway, "deux")
    post(client, "/twilio/status", _status(second.provider_id or "", "delivered"))

    db.refresh(contact)
    assert contact.status == ContactStatus.OK and contact.failure_count == 0


def test_late_delivery_of_an_older_message_does_not_clear_a_newer_failure(
    client: TestClient, db: Session, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    older, contact = _sent(db, gateway, "ancien")
    newer, _ = _sent(db, gateway, "nouveau")
    post(client, "/twilio/status", _status(newer.provider_id or "", "failed", ErrorCode="30003"))

    post(client, "/twilio/status", _status(older.provider_id or "", "delivered"))

    db.refresh(contact)
    assert contact.status == ContactStatus.FAILING


def test_unknown_message_and_status_are_accepted_and_kept(client: TestClient, db: Session) -> None:
    sid = "SM" + "0" * 32
    assert post(client, "/twilio/status", _status(sid, "delivered")).status_code == 204
    assert post(client, "/twilio/status", _status(sid, "some_new_status")).status_code == 204
    assert len(db.scalars(select(WebhookEvent)).all()) == 2


def test_status_callback_needs_a_sid_and_a_valid_signature(client: TestClient, db: Session) -> None:
    fields = _status("SM" + "1" * 32, "delivered")
    assert post(client, "/twilio/status", {"MessageStatus": "delivered"}).status_code == 400
    assert (
        post(client, "/twilio/status", {**fields, "MessageStatus": "", "SmsStatus": ""}).status_code
        == 400
    )
    assert post(client, "/twilio/status", fields, signature="forged").status_code == 403
    assert db.scalars(select(WebhookEvent)).all() == []


def test_call_progress_posted_to_the_messaging_status_url_updates_the_call(
    client: TestClient, db: Session, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    debtor = make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    contact = db.scalars(select(Contact).where(Contact.channel == "voice")).one()
    call = gateway.place_call(
        db,
        conversation=conversation_for_debtor(db, debtor),
        contact=contact,
        purpose="reminder:firm",
    )
    fields = {
        "AccountSid": get_settings().twilio_account_sid,
        "CallSid": call.provider_id or "",
        "CallStatus": "failed",
        "From": get_settings().twilio_voice_from,
        "To": DEBTOR_PHONE,
        "Direction": "outbound-api",
        "ErrorCode": "32009",
    }

    assert post(client, "/twilio/status", fields).status_code == 204

    db.refresh(call)
    db.refresh(contact)
    assert call.status == "failed" and call.extra["outcome"] == "failed"
    assert contact.status == ContactStatus.FAILING and contact.failure_count == 1
