"""POST /twilio/sms driven exactly as Twilio does: signed form posts, TwiML answers, DB state."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance.db.models import AuditEvent, Message, Task, WebhookEvent
from relance.db.models.enums import MessageStatus
from relance.nlg import channel_text
from tests.factories import make_debtor
from tests.support.channels import DEBTOR_PHONE
from tests.support.fake_rasa import FakeRasa
from tests.support.twilio_signing import message_sid, post, sign, sms_fields
from tests.support.twiml import message_texts


def _media_ack(db: Session) -> str:
    return channel_text.text(db, "utter_media_received", language="fr", channel="sms")


def _count(db: Session, model: type) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


def test_sms_is_answered_inline_with_the_assistant_reply(
    client: TestClient, db: Session, rasa: FakeRasa
) -> None:
    debtor = make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    rasa.script["Bonjour"] = [{"text": "Bonjour Camille, que puis-je faire pour vous ?"}]
    fields = sms_fields(DEBTOR_PHONE, "Bonjour")

    response = post(client, "/twilio/sms", fields)

    assert message_texts(response) == ["Bonjour Camille, que puis-je faire pour vous ?"]
    assert rasa.received[0]["sender"] == f"debtor-{debtor.id}"
    assert rasa.received[0]["metadata"]["channel"] == "sms"
    inbound = db.scalars(select(Message).where(Message.provider_id == fields["MessageSid"])).one()
    assert (inbound.direction, inbound.channel, inbound.status) == ("inbound", "sms", "received")
    reply = db.scalars(select(Message).where(Message.direction == "outbound")).one()
    assert reply.body.startswith("Bonjour Camille")
    event = db.scalars(
        select(WebhookEvent).where(WebhookEvent.event_id == fields["MessageSid"])
    ).one()
    assert event.response_body == response.text and event.processed_at is not None


def test_retried_webhook_gets_the_same_twiml_and_changes_nothing(
    client: TestClient, db: Session, rasa: FakeRasa
) -> None:
    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    fields = sms_fields(DEBTOR_PHONE, "je peux payer demain")

    first = post(client, "/twilio/sms", fields)
    rasa.default = lambda text: [{"text": "a different answer the second time"}]
    second = post(client, "/twilio/sms", fields)

    assert second.status_code == 200 and second.text == first.text
    assert message_texts(first) == ["echo: je peux payer demain"]
    assert rasa.texts() == ["je peux payer demain"]
    assert _count(db, Message) == 2  # one inbound, one reply
    assert _count(db, WebhookEvent) == 1


def test_forged_signature_is_refused_and_nothing_is_stored(
    client: TestClient, db: Session, rasa: FakeRasa
) -> None:
    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    fields = sms_fields(DEBTOR_PHONE, "Bonjour")
    forged = [
        sign("http://testserver/twilio/sms", fields, auth_token="not-our-token"),
        sign("http://testserver/twilio/other", fields),  # signed for another URL
        sign("http://testserver/twilio/sms", {**fields, "Body": "autre"}),  # body changed after
        "",
    ]
    for signature in forged:
        response = post(client, "/twilio/sms", fields, signature=signature)
        assert response.status_code == 403
    assert client.post("/twilio/sms", data=fields).status_code == 403  # no header at all
    assert _count(db, Message) == 0 and _count(db, WebhookEvent) == 0
    assert rasa.received == []


def test_bad_input_is_a_clear_400(client: TestClient, db: Session, rasa: FakeRasa) -> None:
    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    good = sms_fields(DEBTOR_PHONE, "Bonjour")
    cases = [
        {k: v for k, v in good.items() if k not in ("MessageSid", "SmsSid")},
        {k: v for k, v in good.items() if k != "From"},
        {**good, "MessageSid": "not-a-sid", "SmsSid": "not-a-sid"},
        {**good, "From": "n'importe quoi"},
        {**good, "NumMedia": "beaucoup"},
    ]
    for fields in cases:
        response = post(client, "/twilio/sms", fields)
        assert response.status_code == 400, fields
        assert "detail" in response.json()
    assert _count(db, Message) == 0 and rasa.received == []


def test_whatsapp_message_uses_the_whatsapp_contact(
    client: TestClient, db: Session, rasa: FakeRasa
) -> None:
    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice", "whatsapp"), postcode="75011")
    fields = sms_fields(f"whatsapp:{DEBTOR_PHONE}", "Bonjour")

    response = post(client, "/twilio/sms", fields)

    assert message_texts(response) == ["echo: Bonjour"]
    assert rasa.received[0]["metadata"]["channel"] == "whatsapp"
    inbound = db.scalars(select(Message).where(Message.direction == "inbound")).one()
    assert (inbound.channel, inbound.address) == ("whatsapp", f"whatsapp:{DEBTOR_PHONE}")


def test_media_only_message_is_acknowledged_for_a_person_to_review(
    client: TestClient, db: Session, rasa: FakeRasa
) -> None:
    debtor = make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
    fields = sms_fields(
        DEBTOR_PHONE,
        "",
        sid="MM" + message_sid()[2:],
        NumMedia="1",
        MediaUrl0=url,
        MediaContentType0="image/jpeg",
    )

    response = post(client, "/twilio/sms", fields)

    assert message_texts(response) == [_media_ack(db)]
    assert rasa.received == []  # the assistant cannot read a picture
    inbound = db.scalars(select(Message).where(Message.direction == "inbound")).one()
    assert inbound.extra == {"media": [{"url": url, "content_type": "image/jpeg"}]}
    task = db.scalars(select(Task).where(Task.kind == "review_attachment")).one()
    assert task.debtor_id == debtor.id and task.details["media"][0]["url"] == url


def test_media_with_text_gets_the_assistant_reply_and_the_acknowledgement(
    client: TestClient, db: Session, rasa: FakeRasa
) -> None:
    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    fields = sms_fields(
        DEBTOR_PHONE,
        "voici mon virement",
        NumMedia="1",
        MediaUrl0="https://api.twilio.com/media/ME2",
        MediaContentType0="application/pdf",
    )

    texts = message_texts(post(client, "/twilio/sms", fields))

    assert texts == ["echo: voici mon virement", _media_ack(db)]
    assert rasa.texts() == ["voici mon virement"]


def test_unknown_number_gets_a_neutral_answer_and_nothing_is_disclosed(
    client: TestClient, db: Session, rasa: FakeRasa
) -> None:
    response = post(client, "/twilio/sms", sms_fields("+33611223344", "Bonjour"))

    [text] = message_texts(response)
    assert text and rasa.received == []
    assert _count(db, Message) == 0
    assert db.scalars(select(AuditEvent.action)).all() == ["inbound.unknown_number"]


def test_unknown_number_reply_gives_the_creditor_phone_not_a_hole(
    client: TestClient, db: Session, rasa: FakeRasa
) -> None:
    """Issue 16 item 4: the reply ended "appelez le ." (the phone was never passed)."""
    from relance.settings import get_settings

    settings = get_settings()
    for body, call in (
        ("Bonjour, c'est qui ?", "appelez le"),
        ("Hello, who is this?", "please call"),
    ):
        [text] = message_texts(post(client, "/twilio/sms", sms_fields("+33611223355", body)))
        assert text.endswith(f"{call} {settings.creditor_phone}."), text
        assert settings.creditor_name in text


def test_rasa_down_gives_a_holding_reply_and_keeps_the_message(
    client: TestClient, db: Session, rasa: FakeRasa
) -> None:
    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    rasa.down = True

    response = post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, "je veux payer"))

    [holding] = message_texts(response)
    assert holding
    kept = db.scalars(select(Message).where(Message.direction == "inbound")).one()
    assert kept.status == MessageStatus.PENDING_ASSISTANT


def test_long_reply_is_split_into_several_messages(
    client: TestClient, db: Session, rasa: FakeRasa
) -> None:
    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    sentence = "Votre facture F-2026-001 reste due à ce jour. "
    rasa.script["détails"] = [{"text": sentence * 60}]  # ~2,800 characters

    texts = message_texts(post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, "détails")))

    assert len(texts) == 2 and all(len(t) <= 1600 for t in texts)
    assert all(t.endswith("jour.") for t in texts)
    assert " ".join(texts) == (sentence * 60).strip()
