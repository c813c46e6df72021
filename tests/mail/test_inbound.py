"""POST /mail/inbound: authentication, quoted-history stripping, threading, language, the answer
by e-mail, unknown senders, opt-out words, and the messages that must never be answered."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from mail.gateway import SmtpMailGateway
from relance.conversations.ports import OutboundMail
from relance.conversations.repository import conversation_for_debtor
from relance.db.models import AuditEvent, Contact, Message, Task, WebhookEvent
from relance.db.models.enums import ContactStatus
from tests.factories import make_debtor
from tests.mail.conftest import DEBTOR_EMAIL
from tests.mail.inbound_helpers import dsn, post_mail, raw_mail
from tests.mail.sink import Sink
from tests.support.fake_rasa import FakeRasa

FR_REPLY = """Je paierai vendredi, promis.

Le lun. 23 nov. 2026 à 10:00, Relance Demo SAS <relances@creancier.example> a écrit :
> Malgré nos relances, la facture F-2026-0042 reste impayée.
> Répondez STOP pour vous désinscrire.
"""
EN_REPLY = """I already paid this invoice last week, please check your records.

On Mon, 23 Nov 2026 at 10:00, Relance Demo SAS <relances@creancier.example> wrote:
> Despite our reminders, invoice F-2026-0042 is still unpaid.
"""


def _reminder_sent(db: Session, gateway: SmtpMailGateway, debtor_id: int) -> str:
    contact = db.scalars(
        select(Contact).where(Contact.debtor_id == debtor_id, Contact.channel == "email")
    ).one()
    conversation = conversation_for_debtor(db, contact.debtor)
    sent = gateway.send_mail(
        db,
        conversation=conversation,
        contact=contact,
        mail=OutboundMail(idempotency_key="r1", paragraphs=("Rappel.",), stage="friendly"),
    )
    assert sent.provider_id is not None
    return sent.provider_id


@pytest.mark.parametrize(
    ("secret", "status"), [(None, 401), ("another-secret-of-the-right-length-0123", 403)]
)
def test_forged_or_unsigned_inbound_is_refused_and_nothing_is_stored(
    db: Session, client: TestClient, sink: Sink, rasa: FakeRasa, secret: str | None, status: int
) -> None:
    make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    raw = raw_mail("Je paierai demain.", message_id="<forged-1@client.example>")
    response = post_mail(client, raw, secret=secret)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert db.scalars(select(WebhookEvent).where(WebhookEvent.provider == "mail")).first() is None
    assert db.scalars(select(Message)).first() is None
    assert rasa.received == [] and sink.received == []


def test_french_reply_is_stripped_answered_by_the_assistant_and_threaded(
    db: Session, client: TestClient, sink: Sink, rasa: FakeRasa, mail_gateway: SmtpMailGateway
) -> None:
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    reminder_id = _reminder_sent(db, mail_gateway, debtor.id)
    raw = raw_mail(FR_REPLY, message_id="<reply-fr@client.example>", in_reply_to=reminder_id)
    response = post_mail(client, raw)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "answered"
    [turn] = rasa.received
    assert turn["message"] == "Je paierai vendredi, promis."  # quoted history gone
    assert turn["metadata"]["channel"] == "email" and turn["metadata"]["language"] == "fr"
    answer = sink.received[-1].message
    assert answer["In-Reply-To"] == "<reply-fr@client.example>"
    assert reminder_id in answer["References"]
    assert answer["Auto-Submitted"] == "auto-replied"
    assert answer["Subject"] == "Re: Rappel : facture F-2026-0042"
    plain = answer.get_body(preferencelist=("plain",))
    assert plain is not None and "echo: Je paierai vendredi" in plain.get_content()
    assert response.json()["reply_message_id"] == answer["Message-ID"]
    inbound = db.scalars(
        select(Message).where(Message.provider_id == "<reply-fr@client.example>")
    ).one()
    assert inbound.channel == "email" and inbound.direction == "inbound"


def test_english_reply_switches_the_conversation_to_english(
    db: Session, client: TestClient, sink: Sink, rasa: FakeRasa, mail_gateway: SmtpMailGateway
) -> None:
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL, language="fr")
    reminder_id = _reminder_sent(db, mail_gateway, debtor.id)
    raw = raw_mail(EN_REPLY, message_id="<reply-en@client.example>", in_reply_to=reminder_id)
    assert post_mail(client, raw).status_code == 200
    [turn] = rasa.received
    assert turn["message"].startswith("I already paid this invoice last week")
    assert "Despite our reminders" not in turn["message"]
    assert turn["metadata"]["language"] == "en"
    assert sink.received[-1].message["In-Reply-To"] == "<reply-en@client.example>"


def test_a_redelivered_message_is_answered_once(
    db: Session, client: TestClient, sink: Sink, rasa: FakeRasa, mail_gateway: SmtpMailGateway
) -> None:
    make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    raw = raw_mail("Je paierai demain.", message_id="<twice@client.example>")
    assert post_mail(client, raw).json()["status"] == "answered"
    assert post_mail(client, raw).json()["status"] == "duplicate"
    assert len(rasa.received) == 1 and len(sink.received) == 1


@pytest.mark.parametrize(
    ("headers", "subject"),
    [
        ({"Auto-Submitted": "auto-replied"}, "Re: Rappel"),
        ({"X-Autoreply": "yes"}, "Re: Rappel"),
        ({"Precedence": "bulk"}, "Re: Rappel"),
        ({"X-Auto-Response-Suppress": "All"}, "Automatic reply: Reminder"),
        ({}, "Réponse automatique : absent jusqu'au 30 novembre"),
        ({}, "Out of Office: back on Monday"),
    ],
)
def test_automatic_answers_never_reach_the_bot_nor_get_an_answer(
    db: Session,
    client: TestClient,
    sink: Sink,
    rasa: FakeRasa,
    mail_gateway: SmtpMailGateway,
    headers: dict[str, str],
    subject: str,
) -> None:
    make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    raw = raw_mail(
        "Je suis absente du bureau.",
        message_id="<ooo@client.example>",
        subject=subject,
        headers=headers,
    )
    response = post_mail(client, raw)
    assert response.json()["status"] == "auto_reply"
    assert rasa.received == [] and sink.received == []
    kept = db.scalars(select(Message).where(Message.provider_id == "<ooo@client.example>")).one()
    assert (kept.extra or {}).get("auto_reply") is True  # the collectors still see it


def test_a_bounce_marks_the_address_undeliverable_and_gets_no_answer(
    db: Session, client: TestClient, sink: Sink, rasa: FakeRasa, mail_gateway: SmtpMailGateway
) -> None:
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    response = post_mail(client, dsn(DEBTOR_EMAIL, message_id="<dsn-1@mx.client.example>"))
    assert response.json()["status"] == "bounce"
    email = db.scalars(
        select(Contact).where(Contact.debtor_id == debtor.id, Contact.channel == "email")
    ).one()
    assert email.status == ContactStatus.BOUNCED and not email.reachable
    assert rasa.received == [] and sink.received == []
    assert db.scalars(select(AuditEvent).where(AuditEvent.action == "mail.bounced")).one()


def test_stop_opts_the_address_out_of_email_only_without_an_answer(
    db: Session, client: TestClient, sink: Sink, rasa: FakeRasa, mail_gateway: SmtpMailGateway
) -> None:
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    response = post_mail(client, raw_mail("STOP\n", message_id="<stop@client.example>"))
    assert response.json()["status"] == "opted_out"
    db.expire_all()
    by_channel = {
        c.channel: c for c in db.scalars(select(Contact).where(Contact.debtor_id == debtor.id))
    }
    assert by_channel["email"].opted_out_at is not None
    assert by_channel["sms"].opted_out_at is None
    assert rasa.received == [] and sink.received == []
    # Later e-mails are kept for the collectors, never answered.
    later = post_mail(client, raw_mail("Bonjour ?", message_id="<after-stop@client.example>"))
    assert later.json()["status"] == "opted_out" and rasa.received == [] and sink.received == []


def test_unknown_sender_gets_no_debt_detail_and_the_collectors_see_it(
    db: Session, client: TestClient, sink: Sink, rasa: FakeRasa, mail_gateway: SmtpMailGateway
) -> None:
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL, name="Camille Martin")
    reminder_id = _reminder_sent(db, mail_gateway, debtor.id)
    raw = raw_mail(
        "Quel est le montant exact ?",
        message_id="<colleague@client.example>",
        sender="comptable@client.example",
        in_reply_to=reminder_id,
    )
    response = post_mail(client, raw)
    assert response.json()["status"] == "unknown_number"
    assert rasa.received == []
    answer = sink.received[-1]
    assert answer.recipients == ["comptable@client.example"]
    text = answer.message.get_body(preferencelist=("plain",))
    assert text is not None
    content = text.get_content()
    assert "adresse e-mail" in content and "F-2026" not in content and "Camille" not in content
    assert answer.message["In-Reply-To"] == "<colleague@client.example>"
    task = db.scalars(select(Task).where(Task.kind == "review_unknown_sender")).one()
    assert task.debtor_id == debtor.id


def test_a_flood_from_one_unknown_address_gets_three_answers_a_day_not_one_each(
    db: Session, client: TestClient, sink: Sink, rasa: FakeRasa
) -> None:
    """Attack: a sender's address can be forged. Ten messages "from" a stranger made Relance
    mail that stranger ten times (backscatter, or a way to bomb someone's inbox through us).
    Three answers a day per address; the rest are audited (without the address), nobody is
    mailed; another stranger is still answered."""
    victim = "victim@elsewhere.example"
    statuses = [
        post_mail(
            client, raw_mail(f"bonjour {n}", message_id=f"<flood-{n}@x>", sender=victim)
        ).json()["status"]
        for n in range(10)
    ]
    assert statuses[:3] == ["unknown_number"] * 3
    assert statuses[3:] == ["unknown_sender_capped"] * 7
    assert [m.recipients for m in sink.received] == [[victim]] * 3
    capped = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "mail.unknown_sender_not_answered")
    ).all()
    assert len(capped) == 7 and all(victim not in str(e.details) for e in capped)
    other = post_mail(client, raw_mail("bonjour", message_id="<other@x>", sender="b@y.example"))
    assert other.json()["status"] == "unknown_number"
    assert sink.received[-1].recipients == ["b@y.example"]


def test_a_message_without_message_id_is_a_clear_4xx(
    db: Session, client: TestClient, sink: Sink
) -> None:
    raw = b"From: a@b.example\r\nSubject: x\r\n\r\nhello\r\n"
    response = post_mail(client, raw)
    assert response.status_code == 400 and "Message-ID" in response.json()["detail"]


@pytest.mark.parametrize("known", [False, True])
def test_a_subject_encoding_a_line_break_is_answered_on_one_line_not_a_500(
    db: Session, client: TestClient, sink: Sink, rasa: FakeRasa, known: bool
) -> None:
    """An encoded word decodes to CR/LF ("Hello\\r\\nBcc: victim@…"); copied into our "Re:"
    answer it made the e-mail library refuse the header and the hook answer 500 to every retry."""
    sender = DEBTOR_EMAIL if known else "stranger@client.example"
    if known:
        make_debtor(db, channels=("email",), email=DEBTOR_EMAIL, name="Camille Martin")
    raw = (
        f"From: <{sender}>\r\nTo: relances@creancier.example\r\n"
        "Subject: =?utf-8?q?Hello=0D=0ABcc:_victim@example.com?=\r\n"
        "Message-ID: <crlf-subject@client.example>\r\n\r\nBonjour\r\n"
    ).encode()
    response = post_mail(client, raw)
    assert response.status_code == 200
    answer = sink.received[-1]
    assert answer.recipients == [sender]
    assert answer.message["Subject"] == "Re: Hello Bcc: victim@example.com"
    assert answer.message["Bcc"] is None
