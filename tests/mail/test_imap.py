"""IMAP polling (mail/imap.py): replies taken from a mailbox get exactly what POST /mail/inbound
gives them, each message flagged seen only once stored, never answered twice, never lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from mail import inbound
from mail.gateway import SmtpMailGateway
from mail.imap import ImapPoller
from relance.db.models import Contact, Message, WebhookEvent
from relance.db.models.enums import ContactStatus
from relance.errors import NotFound, Unauthorized, Unavailable
from relance.settings import get_settings
from tests.factories import make_debtor
from tests.mail.conftest import DEBTOR_EMAIL
from tests.mail.fake_imap import FakeImap, tls_pair
from tests.mail.inbound_helpers import dsn, post_mail, raw_mail
from tests.mail.sink import Sink
from tests.mail.test_inbound import FR_REPLY, _reminder_sent
from tests.support.fake_rasa import FakeRasa


def point_imap_at(server: FakeImap, monkeypatch: pytest.MonkeyPatch, security: str) -> None:
    monkeypatch.setenv("IMAP_HOST", "localhost" if security != "none" else "127.0.0.1")
    monkeypatch.setenv("IMAP_PORT", str(server.port))
    monkeypatch.setenv("IMAP_SECURITY", security)
    monkeypatch.setenv("IMAP_USERNAME", server.username)
    monkeypatch.setenv("IMAP_PASSWORD", server.password)
    get_settings.cache_clear()


@pytest.fixture
def mailbox(sink: Sink, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeImap]:
    """The replies mailbox, plain text on 127.0.0.1; the settings point the poller at it."""
    server = FakeImap().start()
    point_imap_at(server, monkeypatch, "none")
    try:
        yield server
    finally:
        server.stop()


def _stored(db: Session, message_id: str) -> Message | None:
    return db.scalars(select(Message).where(Message.provider_id == message_id)).first()


def test_a_french_reply_in_the_mailbox_gets_the_answer_the_endpoint_gives(
    db: Session,
    client: TestClient,
    mailbox: FakeImap,
    sink: Sink,
    rasa: FakeRasa,
    mail_gateway: SmtpMailGateway,
) -> None:
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    reminder_id = _reminder_sent(db, mail_gateway, debtor.id)
    through_endpoint = raw_mail(
        FR_REPLY, message_id="<by-mta@client.example>", in_reply_to=reminder_id
    )
    assert post_mail(client, through_endpoint).json()["status"] == "answered"
    uid = mailbox.deliver(
        raw_mail(FR_REPLY, message_id="<by-imap@client.example>", in_reply_to=reminder_id)
    )

    report = ImapPoller().poll()

    assert dict(report.outcomes) == {"answered": 1} and report.failed == [] == report.rejected
    assert mailbox.flags(uid) == {"\\Seen"}
    reminder, by_mta, by_imap = (r.message for r in sink.received)
    assert reminder["Message-ID"] == reminder_id
    assert [t["message"] for t in rasa.received] == ["Je paierai vendredi, promis."] * 2
    assert by_imap["In-Reply-To"] == "<by-imap@client.example>"
    assert reminder_id in by_imap["References"]
    for header in ("Subject", "From", "To", "Auto-Submitted", "List-Unsubscribe"):
        assert by_imap[header] == by_mta[header], header
    texts = [m.get_body(preferencelist=("plain",)) for m in (by_mta, by_imap)]
    assert texts[0] is not None and texts[1] is not None
    assert texts[1].get_content() == texts[0].get_content()
    assert "echo: Je paierai vendredi" in texts[1].get_content()
    received = _stored(db, "<by-imap@client.example>")
    assert received is not None and received.direction == "inbound" and received.channel == "email"


def test_an_out_of_office_and_a_bounce_are_consumed_without_an_answer(
    db: Session, mailbox: FakeImap, sink: Sink, rasa: FakeRasa, mail_gateway: SmtpMailGateway
) -> None:
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    ooo = mailbox.deliver(
        raw_mail(
            "Je suis absente jusqu'au 30 novembre.",
            message_id="<ooo@client.example>",
            subject="Réponse automatique : absente",
            headers={"Auto-Submitted": "auto-replied"},
        )
    )
    bounce = mailbox.deliver(dsn(DEBTOR_EMAIL, message_id="<dsn@mx.client.example>"))

    report = ImapPoller().poll()

    assert dict(report.outcomes) == {"auto_reply": 1, "bounce": 1}
    assert mailbox.flags(ooo) == {"\\Seen"} == mailbox.flags(bounce)
    assert rasa.received == [] and sink.received == []
    email = db.scalars(
        select(Contact).where(Contact.debtor_id == debtor.id, Contact.channel == "email")
    ).one()
    assert email.status == ContactStatus.BOUNCED
    kept = _stored(db, "<ooo@client.example>")
    assert kept is not None and (kept.extra or {}).get("auto_reply") is True


def test_a_message_whose_processing_fails_stays_unseen_and_goes_through_at_the_next_poll(
    db: Session,
    mailbox: FakeImap,
    sink: Sink,
    rasa: FakeRasa,
    mail_gateway: SmtpMailGateway,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    first = mailbox.deliver(raw_mail("Je paierai lundi.", message_id="<fails@client.example>"))
    second = mailbox.deliver(raw_mail("Et l'autre facture ?", message_id="<next@client.example>"))
    real_classify = inbound.classify
    calls: list[int] = []

    def classify_failing_once(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database connection lost")
        return real_classify(*args)

    monkeypatch.setattr(inbound, "classify", classify_failing_once)

    report = ImapPoller().poll()

    assert report.failed == [f"UID {first}: RuntimeError: database connection lost"]
    assert dict(report.outcomes) == {"answered": 1}  # the message after it was not held back
    assert mailbox.unseen() == [first] and mailbox.flags(second) == {"\\Seen"}
    assert _stored(db, "<fails@client.example>") is None  # rolled back, nothing half-stored
    assert (
        db.scalars(
            select(WebhookEvent).where(WebhookEvent.event_id == "<fails@client.example>")
        ).first()
        is None
    )

    again = ImapPoller().poll()

    assert dict(again.outcomes) == {"answered": 1} and again.failed == []
    assert mailbox.unseen() == []
    assert [t["message"] for t in rasa.received] == ["Et l'autre facture ?", "Je paierai lundi."]
    assert len(sink.received) == 2


def test_a_poll_that_dies_before_flagging_never_answers_twice(
    db: Session, mailbox: FakeImap, sink: Sink, rasa: FakeRasa, mail_gateway: SmtpMailGateway
) -> None:
    make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    uid = mailbox.deliver(raw_mail("Je paierai demain.", message_id="<once@client.example>"))
    mailbox.drop_next_store = 1

    with pytest.raises(Unavailable):
        ImapPoller().poll()
    assert mailbox.unseen() == [uid]  # processed and committed, but never flagged
    assert len(sink.received) == 1

    replay = ImapPoller().poll()
    assert dict(replay.outcomes) == {"duplicate": 1}
    assert mailbox.unseen() == []
    quiet = ImapPoller().poll()
    assert quiet.unseen == 0 and not quiet.outcomes
    assert len(rasa.received) == 1 and len(sink.received) == 1


def test_a_wrong_password_is_a_clear_error_and_changes_nothing(
    db: Session,
    mailbox: FakeImap,
    sink: Sink,
    rasa: FakeRasa,
    mail_gateway: SmtpMailGateway,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    uid = mailbox.deliver(raw_mail("Je paierai demain.", message_id="<kept@client.example>"))
    monkeypatch.setenv("IMAP_PASSWORD", "not-the-password-of-this-mailbox-0123")
    get_settings.cache_clear()

    with pytest.raises(Unauthorized) as refused:
        ImapPoller().poll()

    assert refused.value.code == "imap_login_refused"
    assert "refused the login of relances@creancier.example" in refused.value.message
    assert "AUTHENTICATIONFAILED" in refused.value.message
    assert "IMAP_PASSWORD" in refused.value.message
    assert mailbox.unseen() == [uid] and mailbox.flags(uid) == set()
    assert not any(c.startswith("UID") for c in mailbox.commands)
    assert _stored(db, "<kept@client.example>") is None
    assert rasa.received == [] and sink.received == []


def test_a_missing_folder_is_named_and_nothing_is_read(
    mailbox: FakeImap, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox.deliver(raw_mail("Bonjour", message_id="<folder@client.example>"))
    monkeypatch.setenv("IMAP_FOLDER", "Relance replies")
    get_settings.cache_clear()
    with pytest.raises(NotFound, match="cannot open the folder"):
        ImapPoller().poll()
    assert 'SELECT "Relance replies"' in mailbox.commands
    assert mailbox.unseen() == [1]


def test_a_message_no_retry_can_accept_is_flagged_for_a_person_and_not_retried(
    db: Session, mailbox: FakeImap, sink: Sink, rasa: FakeRasa, mail_gateway: SmtpMailGateway
) -> None:
    make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    no_id = raw_mail("Bonjour", message_id="<x@client.example>").replace(
        b"Message-ID: <x@client.example>\r\n", b""
    )
    assert b"Message-ID" not in no_id
    uid = mailbox.deliver(no_id)

    report = ImapPoller().poll()

    assert report.rejected == [
        f"UID {uid}: missing_message_id: the message has no valid Message-ID header"
    ]
    assert mailbox.flags(uid) == {"\\Seen", "\\Flagged"}
    assert db.scalars(select(Message)).first() is None
    assert ImapPoller().poll().unseen == 0
    assert rasa.received == [] and sink.received == []


def test_a_message_above_the_size_limit_is_refused_without_being_downloaded(
    db: Session, mailbox: FakeImap, monkeypatch: pytest.MonkeyPatch
) -> None:
    uid = mailbox.deliver(raw_mail("x" * 2000, message_id="<big@client.example>"))
    monkeypatch.setattr(inbound, "MAX_MESSAGE_BYTES", 1000)

    report = ImapPoller().poll()

    assert [r.split(":")[1].strip() for r in report.rejected] == ["message_too_large"]
    assert not any("BODY.PEEK" in c for c in mailbox.commands)
    assert mailbox.flags(uid) == {"\\Seen", "\\Flagged"}


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_the_mailbox_is_read_over_tls_and_the_password_never_travels_in_clear(
    db: Session,
    sink: Sink,
    rasa: FakeRasa,
    mail_gateway: SmtpMailGateway,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    security: str,
) -> None:
    server_context, client_context = tls_pair(tmp_path)
    server = FakeImap(**{security: server_context}).start()  # type: ignore[arg-type]
    try:
        point_imap_at(server, monkeypatch, security)
        make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
        uid = server.deliver(raw_mail("Je paierai demain.", message_id="<tls@client.example>"))
        report = ImapPoller(ssl_context=client_context).poll()
        assert dict(report.outcomes) == {"answered": 1} and server.flags(uid) == {"\\Seen"}
        if security == "starttls":
            assert server.commands.index("STARTTLS") < server.commands.index("LOGIN")
        # The system's trust store does not know this certificate: refused, not read.
        server.deliver(raw_mail("Encore moi.", message_id="<tls-2@client.example>"))
        with pytest.raises(Unavailable, match="CERTIFICATE_VERIFY_FAILED"):
            ImapPoller().poll()
        assert server.unseen() == [uid + 1]
    finally:
        server.stop()


def test_starttls_configured_but_not_offered_stops_before_the_login(
    mailbox: FakeImap, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox.deliver(raw_mail("Bonjour", message_id="<plain@client.example>"))
    monkeypatch.setenv("IMAP_SECURITY", "starttls")
    get_settings.cache_clear()
    with pytest.raises(Unavailable) as failed:
        ImapPoller().poll()
    assert failed.value.code == "imap_starttls_failed"
    assert "the password was not sent" in failed.value.message
    assert "LOGIN" not in mailbox.commands and mailbox.unseen() == [1]


def test_an_unreachable_server_is_a_clear_error(
    mailbox: FakeImap, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox.stop()
    with pytest.raises(Unavailable, match="cannot connect") as failed:
        ImapPoller().poll()
    assert failed.value.code == "imap_unreachable"


def test_relance_mail_poll_polls_once_and_says_what_it_did(
    db: Session,
    mailbox: FakeImap,
    sink: Sink,
    rasa: FakeRasa,
    mail_gateway: SmtpMailGateway,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from relance import wiring
    from relance.cli.main import app
    from relance.conversations import ports

    make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    mailbox.deliver(raw_mail("Je paierai demain.", message_id="<cli@client.example>"))
    mailbox.deliver(dsn(DEBTOR_EMAIL, message_id="<cli-dsn@mx.client.example>"))
    monkeypatch.setattr(ports, "_mailbox_poller", None)
    monkeypatch.setattr(wiring, "wire", lambda: ports.install_mailbox_poller(ImapPoller()))

    done = CliRunner().invoke(app, ["mail", "poll"])

    assert done.exit_code == 0, done.output
    assert f"127.0.0.1:{mailbox.port}/INBOX: 2 unseen, handled 2 (answered 1, bounce 1)" in (
        " ".join(done.output.split())
    )
    assert mailbox.unseen() == [] and len(sink.received) == 1

    monkeypatch.setenv("IMAP_PASSWORD", "not-the-password-of-this-mailbox-0123")
    get_settings.cache_clear()
    refused = CliRunner().invoke(app, ["mail", "poll"])
    assert refused.exit_code == 1
    assert "imap_login_refused" in refused.output


def test_relance_mail_poll_without_a_mailbox_says_so(settings: object) -> None:
    from relance.cli.main import app

    done = CliRunner().invoke(app, ["mail", "poll"])
    assert done.exit_code == 1 and "IMAP_HOST is not set" in done.output
