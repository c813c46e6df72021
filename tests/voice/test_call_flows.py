"""Full calls driven as Twilio drives them: signed webhooks, TwiML parsed, transcript checked."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.conversations.repository import conversation_for_debtor
from relance.db.models import AuditEvent, Contact, Message, Task
from relance.nlg import channel_text
from relance.settings import get_settings
from tests.factories import make_debtor
from tests.support.channels import DEBTOR_PHONE, EN_DEBTOR_PHONE
from tests.support.fake_rasa import FakeRasa
from tests.support.twilio_recorder import TwilioRecorder
from tests.support.twilio_signing import call_fields, call_sid, post
from tests.support.twiml import parse, said
from twilio_edge.gateway import TwilioGateway

COLLECTOR = "+33144556677"
MONDAY_MORNING = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)  # 10:30 in Paris
SATURDAY = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLLECTOR_PHONE", COLLECTOR)
    monkeypatch.setenv("COLLECTOR_HOURS", "mon-fri 09:00-18:00")
    get_settings.cache_clear()
    return COLLECTOR


def _at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    import voice.service

    monkeypatch.setattr(voice.service, "utcnow", lambda: moment)


def _gather(root: ET.Element) -> ET.Element:
    gather = root.find("Gather")
    assert gather is not None, ET.tostring(root)
    return gather


def _answer(
    client: TestClient, root: ET.Element, fields: dict[str, str], **said_: str
) -> ET.Element:
    """Post the caller's input to the <Gather action> of the previous TwiML, as Twilio does."""
    return parse(post(client, _gather(root).attrib["action"], {**fields, **said_}))


def test_french_inbound_call_end_to_end(
    client: TestClient,
    db: Session,
    rasa: FakeRasa,
    twilio: TwilioRecorder,
    gateway: TwilioGateway,
    collector: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _at(monkeypatch, MONDAY_MORNING)
    debtor = make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    rasa.script.update(
        {
            "/greet": [
                {
                    "text": "Bonjour, je suis l'assistant automatique de Relance Demo SAS. Quel est votre code postal ?"
                }
            ],
            "75011": [{"text": "Merci, c'est bien vous. Il reste 120,00 € à régler."}],
            "/request_payment_link": [
                {
                    "text": "Voici votre lien de paiement : https://pay.example/p/abc123. Il expire dans 7 jours."
                }
            ],
            "je veux parler à quelqu'un": [{"text": "Bien sûr."}, {"custom": {"handoff": True}}],
        }
    )
    sid = call_sid()
    fields = call_fields(DEBTOR_PHONE, sid=sid)

    root = parse(post(client, "/twilio/voice", fields))
    gather = _gather(root)
    assert gather.attrib["input"] == "speech dtmf"
    assert gather.attrib["language"] == "fr-FR" and gather.attrib["speechTimeout"] == "auto"
    assert "euros" in gather.attrib["hints"] and "demain" in gather.attrib["hints"]
    assert gather.attrib["action"] == "http://testserver/twilio/voice/gather?turn=1&attempt=0"
    [say] = gather.findall("Say")
    assert say.attrib == {"voice": "Polly.Lea", "language": "fr-FR"}
    assert say.text and say.text.startswith("Bonjour, je suis l'assistant")

    root = _answer(client, root, fields, SpeechResult="75011", Confidence="0.93")
    assert said(root) == ["Merci, c'est bien vous. Il reste 120,00 € à régler."]

    root = _answer(client, root, fields, Digits="1")  # keypad shortcut: payment link by SMS
    spoken = said(root)
    assert spoken == [
        "Voici votre lien de paiement. Il expire dans 7 jours.",
        channel_text.text(db, "utter_voice_link_sent", language="fr", channel="voice"),
    ]
    assert not any("http" in s for s in spoken)  # no URL read aloud
    [sms] = twilio.messages()
    assert sms.field("To") == DEBTOR_PHONE and "https://pay.example/p/abc123" in (
        sms.field("Body") or ""
    )

    root = _answer(client, root, fields, SpeechResult="je veux parler à quelqu'un")
    dial = root.find("Dial")
    assert dial is not None and dial.findtext("Number") == collector
    assert dial.attrib["callerId"] == get_settings().twilio_voice_from
    assert said(root)[-1] == channel_text.text(
        db, "utter_voice_transfer", language="fr", channel="voice"
    )

    finished = parse(
        post(
            client,
            dial.attrib["action"],
            {**fields, "DialCallStatus": "completed", "DialCallDuration": "80"},
        )
    )
    assert finished.find("Hangup") is not None
    status = post(
        client, "/twilio/voice/status", {**fields, "CallStatus": "completed", "CallDuration": "140"}
    )
    assert status.status_code == 204

    assert rasa.texts() == [
        "/greet",
        "75011",
        "/request_payment_link",
        "je veux parler à quelqu'un",
    ]
    assert all(r["metadata"]["channel"] == "voice" for r in rasa.received)
    turns = db.scalars(
        select(Message)
        .where(Message.direction == "inbound", Message.provider_id.like(f"{sid}:%"))
        .order_by(Message.id)
    ).all()
    assert [m.provider_id for m in turns] == [f"{sid}:{n}" for n in range(4)]
    assert [m.extra["input"] for m in turns[1:]] == ["speech", "dtmf", "speech"]
    assert {m.conversation_id for m in turns} == {conversation_for_debtor(db, debtor).id}
    call = db.scalars(select(Message).where(Message.provider_id == sid)).one()
    assert call.extra["outcome"] == "answered" and call.extra["duration_seconds"] == 140
    assert "call.transfer_started" in db.scalars(select(AuditEvent.action)).all()


def test_english_outbound_call_end_to_end(
    client: TestClient, db: Session, rasa: FakeRasa, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    debtor = make_debtor(
        db, phone=EN_DEBTOR_PHONE, language="en", channels=("sms", "voice"), postcode="75011"
    )
    contact = db.scalars(select(Contact).where(Contact.channel == "voice")).one()
    placed = gateway.place_call(
        db,
        conversation=conversation_for_debtor(db, debtor),
        contact=contact,
        purpose="reminder:friendly",
    )
    [call_request] = twilio.calls()
    opening = '/EXTERNAL_reminder{"stage": "friendly"}'
    rasa.script.update(
        {
            opening: [
                {
                    "text": "Hello, this is the automated assistant of Relance Demo SAS. What is your postcode?"
                }
            ],
            "SW1A 1AA": [{"text": "Thank you. Can you pay the balance today?"}],
            "I can pay next Friday": [
                {"text": "Noted, thank you. Goodbye!"},
                {"custom": {"end_call": True}},
            ],
        }
    )
    sid = placed.provider_id or ""
    fields = call_fields(EN_DEBTOR_PHONE, sid=sid, outbound=True, AnsweredBy="human")

    root = parse(post(client, call_request.field("Url") or "", fields))
    gather = _gather(root)
    assert gather.attrib["language"] == "en-US" and "tomorrow" in gather.attrib["hints"]
    assert gather.find("Say").attrib == {"voice": "Polly.Joanna", "language": "en-US"}  # type: ignore[union-attr]
    assert said(root) == [
        "Hello, this is the automated assistant of Relance Demo SAS. What is your postcode?"
    ]

    root = _answer(client, root, fields, SpeechResult="SW1A 1AA")
    assert said(root) == ["Thank you. Can you pay the balance today?"]
    root = _answer(client, root, fields, SpeechResult="I can pay next Friday")
    assert said(root) == ["Noted, thank you. Goodbye!"]
    assert root.find("Hangup") is not None and root.find("Gather") is None

    # Call progress arrives late and out of order: "ringing" after "completed" changes nothing.
    for status, extra in (
        ("completed", {"CallDuration": "64"}),
        ("ringing", {}),
        ("completed", {"CallDuration": "64"}),
    ):
        assert (
            post(
                client, "/twilio/voice/status", {**fields, "CallStatus": status, **extra}
            ).status_code
            == 204
        )
    db.refresh(placed)
    assert placed.extra["call_status"] == "completed" and placed.extra["outcome"] == "answered"
    assert placed.extra["duration_seconds"] == 64 and placed.status == "delivered"
    assert rasa.texts() == [opening, "SW1A 1AA", "I can pay next Friday"]
    assert db.scalars(select(AuditEvent.action).where(AuditEvent.action == "call.ended")).all() == [
        "call.ended"
    ]


def test_answering_machine_gets_a_short_voicemail_without_debt_details(
    client: TestClient, db: Session, rasa: FakeRasa, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    debtor = make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    contact = db.scalars(select(Contact).where(Contact.channel == "voice")).one()
    placed = gateway.place_call(
        db,
        conversation=conversation_for_debtor(db, debtor),
        contact=contact,
        purpose="reminder:firm",
    )
    fields = call_fields(
        DEBTOR_PHONE, sid=placed.provider_id or "", outbound=True, AnsweredBy="machine_start"
    )

    root = parse(post(client, twilio.calls()[0].field("Url") or "", fields))

    voicemail = channel_text.text(db, "utter_voicemail", language="fr", channel="voice")
    assert said(root) == [voicemail]
    assert root.find("Hangup") is not None and root.find("Gather") is None
    assert "€" not in voicemail and "facture" not in voicemail.lower()
    assert rasa.received == []  # the assistant never talks to a machine
    assert db.scalars(
        select(AuditEvent.action).where(AuditEvent.action == "call.voicemail_left")
    ).one()
    post(
        client, "/twilio/voice/status", {**fields, "CallStatus": "completed", "CallDuration": "21"}
    )
    db.refresh(placed)
    assert placed.extra["outcome"] == "voicemail" and placed.extra["answered_by"] == "machine_start"


def test_silence_is_reprompted_twice_then_goodbye_and_sms(
    client: TestClient, db: Session, rasa: FakeRasa, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    fields = call_fields(DEBTOR_PHONE, sid=call_sid())
    reprompt = channel_text.text(db, "utter_voice_reprompt", language="fr", channel="voice")

    root = parse(post(client, "/twilio/voice", fields))
    root = _answer(client, root, fields)
    assert said(root) == [reprompt]
    assert _gather(root).attrib["action"].endswith("turn=1&attempt=1")
    root = _answer(client, root, fields, SpeechResult="  ")
    assert said(root) == [reprompt]
    root = _answer(client, root, fields)

    assert said(root) == [
        channel_text.text(db, "utter_voice_goodbye_no_input", language="fr", channel="voice")
    ]
    assert root.find("Hangup") is not None
    [sms] = twilio.messages()
    # The first SMS of the conversation: the engine puts the AI disclosure in front.
    disclosure = channel_text.text(db, "utter_ai_disclosure_sentence", language="fr", channel="sms")
    assert sms.field("Body") == disclosure + " " + channel_text.text(
        db, "utter_voice_sms_followup", language="fr", channel="sms"
    )
    assert rasa.texts() == ["/greet"]  # silence never reaches the assistant


def test_handoff_outside_hours_creates_a_callback_task(
    client: TestClient,
    db: Session,
    rasa: FakeRasa,
    gateway: TwilioGateway,
    collector: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _at(monkeypatch, SATURDAY)
    debtor = make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    rasa.script["/request_human"] = [{"custom": {"handoff": True}}]
    fields = call_fields(DEBTOR_PHONE, sid=call_sid())

    root = parse(post(client, "/twilio/voice", fields))
    root = _answer(client, root, fields, Digits="0")

    assert root.find("Dial") is None and root.find("Hangup") is not None
    assert said(root) == [
        channel_text.text(db, "utter_voice_callback_scheduled", language="fr", channel="voice")
    ]
    task = db.scalars(select(Task).where(Task.kind == "callback")).one()
    assert task.debtor_id == debtor.id and task.details["phone"] == DEBTOR_PHONE
    assert task.due_at == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # Monday 09:00 in Paris


def test_unanswered_transfer_falls_back_to_a_callback(
    client: TestClient,
    db: Session,
    rasa: FakeRasa,
    gateway: TwilioGateway,
    collector: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _at(monkeypatch, MONDAY_MORNING)
    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    rasa.script["/request_human"] = [
        {"text": "Je vous passe un conseiller."},
        {"custom": {"handoff": True}},
    ]
    fields = call_fields(DEBTOR_PHONE, sid=call_sid())
    root = _answer(client, parse(post(client, "/twilio/voice", fields)), fields, Digits="0")
    dial = root.find("Dial")
    assert dial is not None

    after = parse(post(client, dial.attrib["action"], {**fields, "DialCallStatus": "no-answer"}))

    assert after.find("Hangup") is not None
    task = db.scalars(select(Task).where(Task.kind == "callback")).one()
    assert task.details["reason"] == "transfer_no-answer"


def test_call_while_a_collector_owns_the_conversation_goes_to_a_person(
    client: TestClient,
    db: Session,
    rasa: FakeRasa,
    gateway: TwilioGateway,
    collector: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _at(monkeypatch, MONDAY_MORNING)
    debtor = make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    conversation_for_debtor(db, debtor).mode = "human"
    db.flush()

    root = parse(post(client, "/twilio/voice", call_fields(DEBTOR_PHONE, sid=call_sid())))

    assert root.find("Dial") is not None and rasa.received == []


def test_retried_gather_callback_replays_the_same_twiml(
    client: TestClient, db: Session, rasa: FakeRasa, gateway: TwilioGateway
) -> None:
    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    sid = call_sid()
    fields = call_fields(DEBTOR_PHONE, sid=sid)
    root = parse(post(client, "/twilio/voice", fields))
    action = _gather(root).attrib["action"]

    first = post(client, action, {**fields, "SpeechResult": "je peux payer demain"})
    rasa.default = lambda text: [{"text": "autre réponse"}]
    second = post(client, action, {**fields, "SpeechResult": "je peux payer demain"})

    assert first.text == second.text
    assert rasa.texts() == ["/greet", "je peux payer demain"]
    assert len(db.scalars(select(Message).where(Message.provider_id == f"{sid}:1")).all()) == 1


def test_forged_or_tampered_voice_requests_are_refused(
    client: TestClient, db: Session, rasa: FakeRasa
) -> None:
    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    fields = call_fields(DEBTOR_PHONE, sid=call_sid())
    assert post(client, "/twilio/voice", fields, signature="forged").status_code == 403
    assert post(client, "/twilio/voice", fields, auth_token="wrong").status_code == 403
    # A signature for turn=1 does not cover turn=2: the call state in the URL cannot be altered.
    from tests.support.twilio_signing import sign

    signature = sign("http://testserver/twilio/voice/gather?turn=1&attempt=0", fields)
    response = post(client, "/twilio/voice/gather?turn=2&attempt=0", fields, signature=signature)
    assert response.status_code == 403
    assert (
        post(
            client, "/twilio/voice/status", {**fields, "CallStatus": "completed"}, signature="x"
        ).status_code
        == 403
    )
    assert db.scalars(select(Message)).all() == [] and rasa.received == []


def test_bad_voice_input_is_a_clear_400(client: TestClient, db: Session, rasa: FakeRasa) -> None:
    fields = call_fields(DEBTOR_PHONE, sid=call_sid())
    assert post(client, "/twilio/voice", {**fields, "CallSid": "nope"}).status_code == 400
    assert post(client, "/twilio/voice/gather?turn=x", fields).status_code == 422
    assert post(client, "/twilio/voice/gather", fields).status_code == 422  # turn is required
    assert post(client, "/twilio/voice/status", {**fields, "CallStatus": ""}).status_code == 400


def test_unknown_and_anonymous_callers_hear_a_neutral_message(
    client: TestClient, db: Session, rasa: FakeRasa
) -> None:
    for caller in ("+33611223344", "anonymous"):
        root = parse(post(client, "/twilio/voice", call_fields(caller, sid=call_sid())))
        [text] = said(root)
        assert text and root.find("Hangup") is not None
    assert rasa.received == [] and db.scalars(select(Message)).all() == []


def test_rasa_down_during_a_call_holding_message_then_answer_by_sms(
    client: TestClient, db: Session, rasa: FakeRasa, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    from relance.conversations.replay import replay_all
    from relance.rasa_client import client_from_settings

    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    fields = call_fields(DEBTOR_PHONE, sid=call_sid())
    root = parse(post(client, "/twilio/voice", fields))
    rasa.down = True

    root = _answer(client, root, fields, SpeechResult="je voudrais un échéancier")

    [holding] = said(root)
    assert holding and root.find("Hangup") is not None
    kept = db.scalars(select(Message).where(Message.body == "je voudrais un échéancier")).one()
    assert kept.status == "pending_assistant"

    rasa.down = False
    rasa_client = client_from_settings()
    try:
        assert replay_all(db, rasa_client) == 1
    finally:
        rasa_client.close()
    [sms] = twilio.messages()
    assert (
        sms.field("To") == DEBTOR_PHONE
        and sms.field("Body")
        == channel_text.text(db, "utter_ai_disclosure_sentence", language="fr", channel="sms")
        + " echo: je voudrais un échéancier"  # first SMS: the engine's AI disclosure in front
    )


def test_reminder_purpose_becomes_the_opening_intent() -> None:
    from voice.service import _opening_text

    assert json.loads(_opening_text("reminder:firm").removeprefix("/EXTERNAL_reminder")) == {
        "stage": "firm"
    }
    assert _opening_text(None) == "/greet" and _opening_text("callback") == "/greet"
    discreet = json.loads(
        _opening_text("reminder:final:discreet").removeprefix("/EXTERNAL_reminder")
    )
    assert discreet == {"stage": "final", "discreet": True}


def test_invalid_collector_hours_fall_back_to_a_callback(
    client: TestClient,
    db: Session,
    rasa: FakeRasa,
    gateway: TwilioGateway,
    collector: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLLECTOR_HOURS", "always")
    get_settings.cache_clear()
    _at(monkeypatch, MONDAY_MORNING)
    make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    rasa.script["/request_human"] = [{"custom": {"handoff": True}}]
    fields = call_fields(DEBTOR_PHONE, sid=call_sid())

    root = _answer(client, parse(post(client, "/twilio/voice", fields)), fields, Digits="0")

    assert root.find("Dial") is None and root.find("Hangup") is not None
    assert db.scalars(select(Task).where(Task.kind == "callback")).one().due_at == MONDAY_MORNING
