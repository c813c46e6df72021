"""An e-mail reply whose row was committed `queued` before SMTP, when the process dies before the
server's answer is recorded: never sent a second time blindly (SMTP cannot tell whether the
server took it), never left queued for ever either. The worker's reply job fails it as an
unknown outcome and a collector answers; a row a live process is still sending is left alone;
the unknown sender's answer is covered the same way, by its retry row written before the send."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from mail.gateway import SmtpMailGateway
from mail.transport import SmtpTransport
from relance.conversations import reply_retry
from relance.db.base import utcnow
from relance.db.models import AuditEvent, Conversation, Handoff, Message, ReplyRetry, Task
from relance.db.models.enums import MessageStatus
from tests.factories import make_debtor
from tests.mail.conftest import DEBTOR_EMAIL
from tests.mail.inbound_helpers import post_mail, raw_mail
from tests.mail.sink import Sink
from tests.support.fake_rasa import FakeRasa
from tests.support.reply_retries import run_retries, the_retry

INBOUND_ID = "<question-crash@client.example>"
STRANGER = "comptable@autre.example"
PAST_LEASE = reply_retry.LEASE + timedelta(minutes=1)


class ProcessDied(Exception):
    """Stands for the worker or web process stopping during the SMTP exchange: what it had
    committed stays, nothing after is recorded (and its locks die with it)."""


def _die_during_smtp(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every transport (the inbound endpoint makes its own gateway) dies in the exchange."""

    def dies(self: SmtpTransport, sender: str, recipient: str, data: bytes) -> object:
        raise ProcessDied

    monkeypatch.setattr(SmtpTransport, "send", dies)


def _reply_row(db: Session) -> Message:
    row = db.scalars(
        select(Message).where(Message.direction == "outbound", Message.channel == "email")
    ).one()
    db.refresh(row)
    return row


def _handoffs(db: Session) -> list[Handoff]:
    return list(db.scalars(select(Handoff).where(Handoff.reason == "reply_undelivered")))


def test_a_reply_left_queued_by_a_dead_process_is_handed_to_a_collector_not_resent(
    db: Session,
    client: TestClient,
    sink: Sink,
    rasa: FakeRasa,
    mail_gateway: SmtpMailGateway,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    working = SmtpTransport.send
    _die_during_smtp(monkeypatch)
    response = post_mail(client, raw_mail("Combien je dois ?", message_id=INBOUND_ID))
    assert response.status_code == 500
    monkeypatch.setattr(SmtpTransport, "send", working)  # the server works again
    row = _reply_row(db)
    assert row.status == MessageStatus.QUEUED and row.provider_id  # the claim was committed
    assert (row.extra or {}).get("reply") is True

    assert run_retries(utcnow()) == {}  # too recent to tell from a slow send
    assert run_retries(utcnow() + PAST_LEASE) == {"unsent": 1}
    row = _reply_row(db)
    assert (row.status, row.error_code) == (MessageStatus.FAILED, "outcome_unknown")
    assert (row.extra or {}).get("retryable") is False  # the gateway never re-claims it
    [handoff] = _handoffs(db)
    assert handoff.status == "open" and row.provider_id in (handoff.details or "")
    conversation = db.scalars(select(Conversation).where(Conversation.debtor_id == debtor.id)).one()
    assert conversation.mode == "human"
    [event] = db.scalars(select(AuditEvent).where(AuditEvent.action == "mail.outcome_unknown"))
    assert event.details["message_id"] == row.provider_id

    assert run_retries(utcnow() + 2 * PAST_LEASE) == {}  # once
    again = post_mail(client, raw_mail("Combien je dois ?", message_id=INBOUND_ID))
    assert again.json()["status"] == "duplicate"
    assert sink.received == [] and len(_handoffs(db)) == 1  # never sent blindly a second time


def test_a_reply_a_live_process_is_still_sending_is_left_alone(
    db: Session,
    client: TestClient,
    sink: Sink,
    rasa: FakeRasa,
    mail_gateway: SmtpMailGateway,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A slow SMTP server: the worker's job runs (an hour later, by its clock) while the web
    request is still in the exchange. The row's sender lock says it is alive: untouched."""
    make_debtor(db, channels=("email",), email=DEBTOR_EMAIL)
    seen: list[object] = []
    send = SmtpTransport.send

    def slow_send(self: SmtpTransport, sender: str, recipient: str, data: bytes) -> object:
        seen.append(run_retries(utcnow() + timedelta(hours=1)))
        seen.append(_reply_row(db).status)
        return send(self, sender, recipient, data)

    monkeypatch.setattr(SmtpTransport, "send", slow_send)
    response = post_mail(client, raw_mail("Combien je dois ?", message_id=INBOUND_ID))
    assert response.status_code == 200, response.text
    assert seen == [{}, MessageStatus.QUEUED]
    assert _reply_row(db).status == MessageStatus.SENT
    assert len(sink.received) == 1 and _handoffs(db) == []
    assert run_retries(utcnow() + timedelta(hours=2)) == {}


def test_a_reminder_left_queued_is_the_dispatchers_not_the_reply_jobs(
    db: Session, sink: Sink, mail_gateway: SmtpMailGateway
) -> None:
    """A dunning e-mail (it has a stage) left queued is failed by the dispatcher's own stale
    claim rule (a duplicate reminder is worse than a missed one); the reply job passes."""
    from relance.conversations.repository import conversation_for_debtor

    debtor = make_debtor(db, channels=("email",), email=DEBTOR_EMAIL)
    conversation = conversation_for_debtor(db, debtor)
    long_ago = utcnow() - timedelta(hours=1)
    reminder = Message(
        conversation_id=conversation.id,
        direction="outbound",
        channel="email",
        author="bot",
        body="Rappel",
        address=DEBTOR_EMAIL,
        provider_id="<dunning-left@relance.example>",
        status=MessageStatus.QUEUED,
        extra={"claimed_at": long_ago.isoformat(), "reply": False},
        created_at=long_ago,
    )
    db.add(reminder)
    db.flush()
    assert run_retries(utcnow()) == {}
    db.refresh(reminder)
    assert reminder.status == MessageStatus.QUEUED and _handoffs(db) == []


def _stranger_asks(client: TestClient) -> dict[str, object]:
    raw = raw_mail(
        "Quel est le montant ?", message_id="<stranger-crash@autre.example>", sender=STRANGER
    )
    response = post_mail(client, raw)
    body: dict[str, object] = response.json() if response.status_code == 200 else {}
    body["http_status"] = response.status_code
    return body


def test_an_unknown_senders_answer_interrupted_mid_send_leaves_a_task_not_silence(
    db: Session,
    client: TestClient,
    sink: Sink,
    rasa: FakeRasa,
    mail_gateway: SmtpMailGateway,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before, nothing was written before its SMTP session: a process dying there lost the answer
    without a trace (the inbound e-mail claimed, so never answered). Its retry row is now
    committed `sending` with the lease before the send: the worker fails it as an unknown
    outcome, never resends it, and a person gets the task; the row keeps nothing of them."""
    _die_during_smtp(monkeypatch)
    assert _stranger_asks(client)["http_status"] == 500
    retry = the_retry(db)
    assert (retry.status, retry.address) == ("sending", STRANGER) and retry.mail_bytes

    assert run_retries(utcnow()) == {}  # its lease runs: it may still be in the exchange
    assert run_retries(utcnow() + PAST_LEASE) == {"stale": 1}
    retry = the_retry(db)
    assert (retry.status, retry.last_error_code) == ("failed", "outcome_unknown")
    assert (retry.address, retry.mail_bytes) == (None, None)
    [task] = db.scalars(select(Task).where(Task.kind == reply_retry.UNANSWERED_TASK)).all()
    assert task.details["address"] == STRANGER
    assert task.details["error_code"] == "outcome_unknown"
    assert run_retries(utcnow() + 2 * PAST_LEASE) == {} and sink.received == []


def test_an_unknown_senders_answer_sent_at_once_leaves_no_retry_row(
    db: Session, client: TestClient, sink: Sink, rasa: FakeRasa, mail_gateway: SmtpMailGateway
) -> None:
    assert _stranger_asks(client)["http_status"] == 200
    [answer] = sink.received
    assert answer.recipients == [STRANGER]
    assert db.scalars(select(ReplyRetry)).first() is None  # its in-flight row went with the send
    assert run_retries(utcnow() + PAST_LEASE) == {} and len(sink.received) == 1
