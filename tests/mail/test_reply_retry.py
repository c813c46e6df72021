"""The e-mail answer to a debtor's message, when SMTP fails: a 4xx is retried by the worker with
backoff (the same row, the same Message-ID, delivered once), a 5xx is not, the cap and a permanent
failure hand the conversation to a collector, an opt-out cancels, quiet hours and Sundays wait,
and two workers send once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from mail.compose import message_id_for
from mail.gateway import SmtpMailGateway
from relance.contacts import service as contacts
from relance.conversations import reply_retry
from relance.db import session as db_session
from relance.db.models import (
    AuditEvent,
    Contact,
    Conversation,
    Debtor,
    Handoff,
    Message,
    ReplyRetry,
    Task,
)
from relance.db.models.enums import MessageStatus
from relance.settings import get_settings
from tests.factories import make_debtor
from tests.mail.conftest import DEBTOR_EMAIL
from tests.mail.inbound_helpers import post_mail, raw_mail
from tests.mail.sink import Sink
from tests.support.fake_rasa import FakeRasa
from tests.support.reply_retries import closed_at, open_at, run_retries, the_retry

INBOUND_ID = "<question@client.example>"
TRY_LATER = "451 4.3.0 Try again later"


def _question(client: TestClient) -> dict[str, object]:
    response = post_mail(client, raw_mail("Combien je dois ?", message_id=INBOUND_ID))
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _reply_row(db: Session) -> Message:
    row = db.scalars(
        select(Message).where(Message.direction == "outbound", Message.channel == "email")
    ).one()
    db.refresh(row)
    return row


def _handoffs(db: Session) -> list[Handoff]:
    return list(db.scalars(select(Handoff).where(Handoff.reason == "reply_undelivered")))


def _debtor(db: Session) -> Debtor:
    return make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)


def test_a_4xx_is_retried_with_backoff_and_the_reply_goes_out_once_with_its_message_id(
    db: Session, client: TestClient, sink: Sink, rasa: FakeRasa, mail_gateway: SmtpMailGateway
) -> None:
    debtor = _debtor(db)
    sink.fail_next = [TRY_LATER, TRY_LATER]
    assert _question(client)["status"] == "reply_retrying"
    row = _reply_row(db)
    assert row.status == MessageStatus.FAILED and row.error_code == "smtp_451"  # kept, visible
    retry = the_retry(db)
    assert (retry.status, retry.attempts, retry.message_id) == ("pending", 1, row.id)

    first = open_at(debtor, retry.next_attempt_at)
    assert run_retries(first) == {"retry": 1}  # the second 451
    retry = the_retry(db)
    assert retry.attempts == 2
    assert retry.next_attempt_at == first + reply_retry.backoff(2)
    assert reply_retry.backoff(2) == 2 * reply_retry.backoff(1)
    assert run_retries(retry.next_attempt_at - timedelta(seconds=1)) == {}  # not yet due

    assert run_retries(open_at(debtor, retry.next_attempt_at)) == {"sent": 1}
    [delivered] = sink.received
    assert delivered.message["Message-ID"] == message_id_for(f"reply:{INBOUND_ID}", get_settings())
    assert delivered.message["In-Reply-To"] == INBOUND_ID
    assert "echo: Combien je dois ?" in delivered.data.decode()
    row = _reply_row(db)  # the same row, no second message
    assert row.status == MessageStatus.SENT and row.provider_id == delivered.message["Message-ID"]
    assert the_retry(db).status == "sent" and the_retry(db).attempts == 3
    assert run_retries(open_at(debtor, retry.next_attempt_at + timedelta(hours=2))) == {}
    assert len(sink.received) == 1 and _handoffs(db) == []


def test_a_5xx_is_not_retried_and_a_collector_answers(
    db: Session, client: TestClient, sink: Sink, rasa: FakeRasa, mail_gateway: SmtpMailGateway
) -> None:
    debtor = _debtor(db)
    sink.fail_next = ["550 5.1.1 No such user"]
    assert _question(client)["status"] == "reply_failed"
    row = _reply_row(db)
    assert row.status == MessageStatus.FAILED and row.error_code == "smtp_550"
    assert db.scalars(select(ReplyRetry)).first() is None
    [handoff] = _handoffs(db)
    assert handoff.status == "open" and "smtp_550" in (handoff.details or "")
    conversation = db.scalars(select(Conversation).where(Conversation.debtor_id == debtor.id)).one()
    assert conversation.mode == "human"
    assert run_retries(open_at(debtor, row.created_at + timedelta(days=1))) == {}
    assert sink.received == []


def test_the_cap_fails_the_reply_for_good_and_opens_a_collector_task(
    db: Session,
    client: TestClient,
    sink: Sink,
    rasa: FakeRasa,
    mail_gateway: SmtpMailGateway,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPLY_RETRY_MAX_ATTEMPTS", "3")
    get_settings.cache_clear()
    debtor = _debtor(db)
    sink.fail_next = [TRY_LATER] * 5
    _question(client)
    outcomes = []
    for _ in range(4):
        retry = the_retry(db)
        outcomes.append(run_retries(open_at(debtor, retry.next_attempt_at)))
    assert outcomes == [{"retry": 1}, {"failed": 1}, {}, {}]
    retry = the_retry(db)
    assert (retry.status, retry.attempts, retry.last_error_code) == ("failed", 3, "smtp_451")
    assert retry.finished_at is not None
    [handoff] = _handoffs(db)
    assert handoff.status == "open" and "3 attempt(s)" in (handoff.details or "")
    assert sink.received == [] and len(sink.fail_next) == 2  # three sends, no fourth
    assert _reply_row(db).status == MessageStatus.FAILED


def test_an_opt_out_between_attempts_cancels_the_retry(
    db: Session, client: TestClient, sink: Sink, rasa: FakeRasa, mail_gateway: SmtpMailGateway
) -> None:
    debtor = _debtor(db)
    sink.fail_next = [TRY_LATER]
    _question(client)
    contact = db.scalars(
        select(Contact).where(Contact.debtor_id == debtor.id, Contact.channel == "email")
    ).one()
    contacts.opt_out(db, contact, source="email", keyword="STOP")
    db.flush()
    assert run_retries(open_at(debtor, the_retry(db).next_attempt_at)) == {"cancelled": 1}
    retry = the_retry(db)
    assert (retry.status, retry.last_error_code) == ("cancelled", "opted_out")
    assert sink.received == [] and _handoffs(db) == []


@pytest.mark.parametrize("closed", ["sunday", "night"])
def test_a_retry_falling_outside_the_contact_hours_waits_for_the_next_window(
    db: Session,
    client: TestClient,
    sink: Sink,
    rasa: FakeRasa,
    mail_gateway: SmtpMailGateway,
    closed: str,
) -> None:
    debtor = _debtor(db)
    sink.fail_next = [TRY_LATER]
    _question(client)
    when = closed_at(debtor, the_retry(db).next_attempt_at, closed)
    assert run_retries(when) == {"deferred": 1}
    retry = the_retry(db)
    assert retry.status == "pending" and retry.attempts == 1  # waiting is not an attempt
    assert retry.next_attempt_at == open_at(debtor, when) > when
    assert sink.received == []
    assert run_retries(retry.next_attempt_at) == {"sent": 1}
    assert len(sink.received) == 1


def test_two_workers_running_the_retry_job_at_once_send_once(
    db: Session,
    client: TestClient,
    sink: Sink,
    rasa: FakeRasa,
    mail_gateway: SmtpMailGateway,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Worker B read the retry as due before worker A claimed it, and tries it while A's SMTP
    session is open: B's claim matches nothing; B's whole job, run then, finds nothing due."""
    debtor = _debtor(db)
    sink.fail_next = [TRY_LATER]
    _question(client)
    retry_id = the_retry(db).id
    now = open_at(debtor, the_retry(db).next_attempt_at)
    seen_by_b: list[object] = []
    send = mail_gateway.transport.send

    def a_sends(sender: str, recipient: str, data: bytes) -> object:
        factory = db_session.get_sessionmaker()
        seen_by_b.append(reply_retry._attempt(factory, retry_id, now))
        seen_by_b.append(run_retries(now))
        return send(sender, recipient, data)

    monkeypatch.setattr(mail_gateway.transport, "send", a_sends)
    assert run_retries(now) == {"sent": 1}
    assert seen_by_b == ["taken", {}]
    assert len(sink.received) == 1


def test_a_claim_left_by_a_dead_worker_is_never_sent_blindly(
    db: Session, client: TestClient, sink: Sink, rasa: FakeRasa, mail_gateway: SmtpMailGateway
) -> None:
    debtor = _debtor(db)
    sink.fail_next = [TRY_LATER]
    _question(client)
    retry = the_retry(db)
    retry.status = "sending"  # claimed, then the worker died during the SMTP session
    db.flush()
    later = open_at(debtor, retry.next_attempt_at + reply_retry.LEASE)
    assert run_retries(later) == {"stale": 1}
    assert the_retry(db).status == "failed" and the_retry(db).last_error_code == "outcome_unknown"
    assert sink.received == [] and len(_handoffs(db)) == 1


STRANGER = "comptable@autre.example"
STRANGER_MAIL_ID = "<from-a-stranger@autre.example>"


def _stranger_asks(client: TestClient) -> dict[str, object]:
    raw = raw_mail(
        "Bonjour, quel est le montant exact de la facture ?",
        message_id=STRANGER_MAIL_ID,
        sender=STRANGER,
    )
    response = post_mail(client, raw)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_an_unknown_senders_answer_is_retried_after_a_4xx_and_still_tells_nothing_of_the_debt(
    db: Session, client: TestClient, sink: Sink, rasa: FakeRasa, mail_gateway: SmtpMailGateway
) -> None:
    """Someone whose address is not on file gets the identity-check answer. A 451 used to raise
    out of the request (a 500, everything rolled back, the answer never retried); now it is
    kept, byte for byte, and the worker sends it once the server takes it (451, then 250)."""
    _debtor(db)  # a debtor with debts exists; the stranger is not on file
    sink.fail_next = [TRY_LATER]
    body = _stranger_asks(client)
    assert body["status"] == "reply_retrying" and body["reply_message_id"] is None
    assert rasa.received == [] and sink.received == []
    retry = the_retry(db)
    assert (retry.status, retry.attempts, retry.message_id, retry.contact_id) == (
        "pending",
        1,
        None,
        None,
    )
    assert retry.address == STRANGER and retry.last_error_code == "smtp_451"
    assert run_retries(retry.next_attempt_at - timedelta(seconds=1)) == {}  # not yet due

    assert run_retries(open_at(None, retry.next_attempt_at)) == {"sent": 1}
    [answer] = sink.received
    assert answer.recipients == [STRANGER]
    assert answer.message["Message-ID"] == message_id_for(
        f"unknown:{STRANGER_MAIL_ID}", get_settings()
    )
    assert answer.message["In-Reply-To"] == STRANGER_MAIL_ID
    text = answer.message.get_body(preferencelist=("plain",))
    assert text is not None
    content = text.get_content()
    assert "adresse e-mail" in content  # the identity-check answer
    for detail in ("F-2026", "Camille", "€", "EUR"):  # no debt detail before identity
        assert detail not in content
    retry = the_retry(db)
    assert (retry.status, retry.attempts) == ("sent", 2)
    assert (retry.address, retry.mail_bytes) == (None, None)  # nothing of the stranger is kept
    assert db.scalars(select(Message)).first() is None  # nobody's transcript gets it
    assert run_retries(open_at(None, retry.next_attempt_at + timedelta(hours=2))) == {}
    assert len(sink.received) == 1
    answered = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "mail.unknown_sender_answered")
    ).all()
    assert len(answered) == 1


def test_an_unknown_senders_answer_refused_for_good_leaves_a_task_for_a_person(
    db: Session, client: TestClient, sink: Sink, rasa: FakeRasa, mail_gateway: SmtpMailGateway
) -> None:
    sink.fail_next = ["550 5.1.1 No such user"]
    body = _stranger_asks(client)
    assert body["status"] == "reply_failed"
    assert db.scalars(select(ReplyRetry)).first() is None
    [task] = db.scalars(select(Task).where(Task.kind == reply_retry.UNANSWERED_TASK)).all()
    assert task.details["address"] == STRANGER and task.details["error_code"] == "smtp_550"
    # The inbound message was claimed and recorded: a re-delivery is not answered again.
    again = post_mail(client, raw_mail("Bonjour ?", message_id=STRANGER_MAIL_ID, sender=STRANGER))
    assert again.json()["status"] == "duplicate" and sink.received == []


def test_an_unknown_senders_answer_retried_at_night_waits_for_the_default_window(
    db: Session, client: TestClient, sink: Sink, rasa: FakeRasa, mail_gateway: SmtpMailGateway
) -> None:
    """Who wrote is not known (they may be a debtor): the default jurisdiction's hours hold."""
    sink.fail_next = [TRY_LATER]
    _stranger_asks(client)
    night = closed_at(None, the_retry(db).next_attempt_at, "night")
    assert run_retries(night) == {"deferred": 1}
    retry = the_retry(db)
    assert (retry.status, retry.attempts) == ("pending", 1)
    assert retry.next_attempt_at == open_at(None, night) > night and sink.received == []
    assert run_retries(retry.next_attempt_at) == {"sent": 1} and len(sink.received) == 1


def test_an_unknown_senders_retry_failed_for_good_keeps_nothing_of_them_but_the_task(
    db: Session,
    client: TestClient,
    sink: Sink,
    rasa: FakeRasa,
    mail_gateway: SmtpMailGateway,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The address and the e-mail's bytes are what the retry needs, and only while it may still
    be sent: once it has ended they go at once (the task a person answers keeps the address)."""
    monkeypatch.setenv("REPLY_RETRY_MAX_ATTEMPTS", "2")
    get_settings.cache_clear()
    sink.fail_next = [f"452 4.2.2 <{STRANGER}>: mailbox full"] * 2
    _stranger_asks(client)
    pending = the_retry(db)
    assert pending.address == STRANGER and pending.mail_bytes and STRANGER in pending.last_error
    assert run_retries(open_at(None, pending.next_attempt_at)) == {"failed": 1}
    retry = the_retry(db)
    assert (retry.status, retry.last_error_code) == ("failed", "smtp_452")
    assert (retry.address, retry.mail_bytes) == (None, None)
    assert retry.last_error is not None and STRANGER not in retry.last_error.lower()
    [task] = db.scalars(select(Task).where(Task.kind == reply_retry.UNANSWERED_TASK)).all()
    assert task.details["address"] == STRANGER and task.details["attempts"] == 2


def test_an_unknown_senders_retry_cancelled_by_an_opt_out_keeps_nothing_of_them(
    db: Session, client: TestClient, sink: Sink, rasa: FakeRasa, mail_gateway: SmtpMailGateway
) -> None:
    sink.fail_next = [TRY_LATER]
    _stranger_asks(client)
    # The address turns out to be a debtor's, who opts out of e-mail before the retry.
    debtor = make_debtor(db, channels=("email",), email=STRANGER)
    contact = db.scalars(select(Contact).where(Contact.debtor_id == debtor.id)).one()
    contacts.opt_out(db, contact, source="email", keyword="STOP")
    db.flush()
    assert run_retries(open_at(None, the_retry(db).next_attempt_at)) == {"cancelled": 1}
    retry = the_retry(db)
    assert (retry.status, retry.address, retry.mail_bytes) == ("cancelled", None, None)
    assert sink.received == []
