"""Replies sent through the Twilio REST edge (the replay's answers, not TwiML), when Twilio fails:
a 503 is retried by the worker on the same row and delivered once, 21211 and 21610 are not
retried, and two workers running the job at once (real commits, separate connections) send once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from relance.conversations.replay import replay_all
from relance.conversations.reply_retry import retry_due
from relance.conversations.repository import conversation_for_debtor
from relance.db import session as db_session
from relance.db.base import utcnow
from relance.db.models import Contact, Debtor, Handoff, Message, ReplyRetry
from relance.db.models.enums import MessageStatus
from relance.rasa_client import client_from_settings
from relance.settings import Settings, get_settings
from tests.factories import make_debtor, make_failed_reply
from tests.support.channels import DEBTOR_PHONE
from tests.support.fake_rasa import FakeRasa
from tests.support.purge import purge_debtors
from tests.support.reply_retries import open_at, run_retries, the_retry
from tests.support.twilio_recorder import TwilioRecorder
from tests.support.twilio_signing import post, sms_fields
from twilio_edge.gateway import TwilioGateway


def _answered_by_replay(client: TestClient, db: Session, rasa: FakeRasa) -> Debtor:
    """The debtor texted while the assistant was down; the worker's replay answers by REST."""
    debtor = make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    rasa.down = True
    post(client, "/twilio/sms", sms_fields(DEBTOR_PHONE, "combien je dois"))
    rasa.down = False
    rasa_client = client_from_settings()
    try:
        assert replay_all(db, rasa_client) == 1
    finally:
        rasa_client.close()
    return debtor


def _bot_replies(db: Session) -> list[Message]:
    rows = list(
        db.scalars(select(Message).where(Message.direction == "outbound", Message.author == "bot"))
    )
    for row in rows:
        db.refresh(row)
    return rows


def test_a_503_is_retried_on_the_same_row_and_delivered_once(
    client: TestClient, db: Session, rasa: FakeRasa, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    twilio.fail_next(503, code=20503, message="Service unavailable")
    debtor = _answered_by_replay(client, db, rasa)
    [failed] = _bot_replies(db)
    assert failed.status == MessageStatus.FAILED and failed.provider_id is None
    retry = the_retry(db)
    assert (retry.status, retry.message_id, retry.channel) == ("pending", failed.id, "sms")

    assert run_retries(open_at(debtor, retry.next_attempt_at)) == {"sent": 1}
    [sent] = _bot_replies(db)  # the same row, no second message
    assert sent.id == failed.id and sent.provider_id and sent.provider_id.startswith("SM")
    assert sent.status == MessageStatus.QUEUED and sent.error_code is None
    first, second = twilio.messages()
    assert first.field("Body") == second.field("Body") == sent.body
    assert second.field("To") == DEBTOR_PHONE
    assert the_retry(db).status == "sent"
    assert run_retries(open_at(debtor, retry.next_attempt_at + timedelta(hours=1))) == {}
    assert len(twilio.messages()) == 2


def test_an_invalid_number_is_not_retried_and_a_collector_answers(
    client: TestClient, db: Session, rasa: FakeRasa, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    twilio.fail_next(400, code=21211, message="Invalid 'To' Phone Number")
    debtor = _answered_by_replay(client, db, rasa)
    [failed] = _bot_replies(db)
    assert failed.status == MessageStatus.FAILED and failed.error_code == "21211"
    assert db.scalars(select(ReplyRetry)).first() is None
    [handoff] = db.scalars(select(Handoff).where(Handoff.reason == "reply_undelivered")).all()
    assert "21211" in (handoff.details or "")
    assert run_retries(open_at(debtor, utcnow() + timedelta(hours=1))) == {}
    assert len(twilio.messages()) == 1


def test_a_carrier_unsubscribe_is_not_retried_nor_handed_off(
    client: TestClient, db: Session, rasa: FakeRasa, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    twilio.fail_next(400, code=21610, message="Attempt to send to unsubscribed recipient")
    _answered_by_replay(client, db, rasa)
    assert db.scalars(select(ReplyRetry)).first() is None
    assert db.scalars(select(Handoff)).first() is None
    contact = db.scalars(select(Contact).where(Contact.channel == "sms")).one()
    assert contact.opted_out_at is not None  # the edge recorded the carrier's opt-out


def test_a_retry_failing_again_with_a_permanent_error_stops_and_hands_off(
    client: TestClient, db: Session, rasa: FakeRasa, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    twilio.fail_next(503, code=20503)
    twilio.fail_next(400, code=21211)
    debtor = _answered_by_replay(client, db, rasa)
    assert run_retries(open_at(debtor, the_retry(db).next_attempt_at)) == {"failed": 1}
    retry = the_retry(db)
    assert (retry.status, retry.attempts, retry.last_error_code) == ("failed", 2, "21211")
    assert db.scalars(select(Handoff).where(Handoff.reason == "reply_undelivered")).one()


def test_a_whatsapp_reply_retried_after_the_24_hour_window_goes_as_the_template_on_its_row(
    client: TestClient, db: Session, rasa: FakeRasa, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    """The replay answered a WhatsApp message inside the window, Twilio answered 503, and the
    retry comes when the debtor's message is more than 24 hours old: free text would be refused
    (63016) or break WhatsApp's policy. The same row goes as the approved template, the reply
    held on it, and the debtor's next message gets it."""
    whatsapp = f"whatsapp:{DEBTOR_PHONE}"
    debtor = make_debtor(
        db, phone=DEBTOR_PHONE, channels=("sms", "voice", "whatsapp"), postcode="75011"
    )
    twilio.fail_next(503, code=20503, message="Service unavailable")
    rasa.down = True
    post(client, "/twilio/sms", sms_fields(whatsapp, "combien je dois"))
    rasa.down = False
    rasa_client = client_from_settings()
    try:
        assert replay_all(db, rasa_client) == 1
    finally:
        rasa_client.close()
    [failed] = _bot_replies(db)
    assert (failed.channel, failed.status) == ("whatsapp", MessageStatus.FAILED)
    reply = failed.body
    assert "echo: combien je dois" in reply
    [inside] = twilio.messages()
    assert inside.field("Body") == reply  # free text: the window was open then

    asked = db.scalars(select(Message).where(Message.direction == "inbound")).one()
    asked.created_at -= timedelta(hours=25)  # a day later: the window has closed
    db.flush()
    retry = the_retry(db)
    assert retry.channel == "whatsapp"
    assert run_retries(open_at(debtor, retry.next_attempt_at)) == {"sent": 1}

    _inside, outside = twilio.messages()
    assert outside.field("Body") is None  # no free text outside the window
    assert outside.field("ContentSid") == get_settings().twilio_whatsapp_template_sid
    assert outside.field("To") == whatsapp
    [row] = _bot_replies(db)  # the same row, now the template, the reply held on it
    assert row.id == failed.id and row.provider_id and row.status == MessageStatus.QUEUED
    assert (row.extra or {}).get("template") is True
    assert (row.extra or {}).get("withheld_texts") == [reply]
    assert the_retry(db).status == "sent"

    answer = post(client, "/twilio/sms", sms_fields(whatsapp, "oui ?"))  # the window reopens
    assert "echo: combien je dois" in answer.text
    assert len(twilio.messages()) == 2


def test_a_whatsapp_reply_retried_inside_the_window_is_sent_as_it_was(
    client: TestClient, db: Session, rasa: FakeRasa, twilio: TwilioRecorder, gateway: TwilioGateway
) -> None:
    whatsapp = f"whatsapp:{DEBTOR_PHONE}"
    debtor = make_debtor(
        db, phone=DEBTOR_PHONE, channels=("sms", "voice", "whatsapp"), postcode="75011"
    )
    twilio.fail_next(503, code=20503)
    rasa.down = True
    post(client, "/twilio/sms", sms_fields(whatsapp, "combien je dois"))
    rasa.down = False
    rasa_client = client_from_settings()
    try:
        assert replay_all(db, rasa_client) == 1
    finally:
        rasa_client.close()
    [failed] = _bot_replies(db)
    assert run_retries(open_at(debtor, the_retry(db).next_attempt_at)) == {"sent": 1}
    first, second = twilio.messages()
    assert second.field("Body") == first.field("Body") == failed.body
    assert second.field("ContentSid") is None


@pytest.fixture
def committed(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[sessionmaker[Session], list[int]]]:
    """Real sessions on separate connections (two workers see each other's commits), and the
    list of debtors the test committed, removed afterwards."""
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    monkeypatch.setattr(db_session, "get_sessionmaker", lambda: factory)
    debtor_ids: list[int] = []
    try:
        yield factory, debtor_ids
    finally:
        with factory() as cleanup:
            purge_debtors(cleanup, debtor_ids)
            cleanup.commit()


def test_two_workers_running_the_retry_job_concurrently_send_once(
    committed: tuple[sessionmaker[Session], list[int]],
    twilio: TwilioRecorder,
    gateway: TwilioGateway,
) -> None:
    factory, debtor_ids = committed
    with factory() as setup:
        debtor = make_debtor(setup, channels=("sms",))
        debtor_ids.append(debtor.id)
        contact = debtor.contacts[0]
        conversation = conversation_for_debtor(setup, debtor)
        now = open_at(debtor, utcnow())
        retry = make_failed_reply(
            setup, conversation, contact, "Votre solde est de 120,00 €.", next_attempt_at=now
        )
        setup.commit()
        failed_id = retry.message_id
    twilio.delay_next(0.5)  # worker A is inside the Twilio call while worker B runs

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(lambda _: retry_due(factory, now=now), range(2)))

    total: Counter[str] = Counter()
    for outcome in outcomes:
        total.update(outcome)
    assert total["sent"] == 1 and set(total) <= {"sent", "taken"}  # B lost the claim, or saw none
    assert len(twilio.messages()) == 1
    with factory() as check:
        row = check.get(Message, failed_id)
        assert row is not None and row.provider_id and row.status == MessageStatus.QUEUED
        retry = check.scalars(select(ReplyRetry).where(ReplyRetry.message_id == failed_id)).one()
        assert retry.status == "sent" and retry.attempts == 2
