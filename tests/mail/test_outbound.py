"""Outbound e-mail through the SMTP gateway to the aiosmtpd sink: parts, wording per locale,
attachments, headers, threading, proof of sending, DKIM, idempotency and connection reuse."""

from __future__ import annotations

import hashlib
import re
import subprocess
import time
from datetime import date
from pathlib import Path

import dkim
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mail.gateway import SmtpMailGateway
from mail.transport import DomainRateLimiter
from relance.conversations.ports import DeliveryError, OutboundMail
from relance.conversations.repository import conversation_for_debtor
from relance.db.models import Contact, Debtor, Invoice, Message
from relance.db.models.enums import MessageStatus
from relance.settings import get_settings
from tests.factories import make_debtor, make_invoice
from tests.mail.conftest import DEBTOR_EMAIL
from tests.mail.helpers import debtor_wrote_by_mail
from tests.mail.sink import Sink


def _invoice(db: Session, debtor: Debtor, number: str = "F-2026-0042") -> Invoice:
    return make_invoice(
        db,
        debtor,
        123450,
        number=number,
        issued=date(2026, 10, 1),
        due=date(2026, 11, 1),
        description="Maintenance",
    )


def _send(db: Session, gateway: SmtpMailGateway, debtor_id: int, mail: OutboundMail) -> Message:
    contact = _email_contact(db, debtor_id)
    conversation = conversation_for_debtor(db, contact.debtor)
    return gateway.send_mail(db, conversation=conversation, contact=contact, mail=mail)


def _email_contact(db: Session, debtor_id: int) -> Contact:
    return db.scalars(
        select(Contact).where(Contact.debtor_id == debtor_id, Contact.channel == "email")
    ).one()


def _reminder(invoice: Invoice, key: str = "dunning:g1:firm", **kw: object) -> OutboundMail:
    return OutboundMail(
        idempotency_key=key,
        paragraphs=("Malgré nos relances, la facture reste impayée.",),
        stage=kw.pop("stage", "firm"),  # type: ignore[arg-type]
        invoice_ids=(invoice.id,),
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("language", "subject", "legal", "attached"),
    [
        ("fr", "Deuxième relance : facture F-2026-0042", "40 €", "En pièce jointe"),
        ("en", "Second reminder: invoice F-2026-0042", "EUR 40", "Attached:"),
    ],
)
def test_reminder_is_multipart_per_locale_with_invoice_pdf_identity_and_legal_mentions(
    db: Session, sink: Sink, mail_gateway: SmtpMailGateway, language: str, subject: str,
    legal: str, attached: str,
) -> None:  # fmt: skip
    debtor = make_debtor(
        db,
        channels=("email", "sms"),
        email=DEBTOR_EMAIL,
        language=language,
        segment="b2b",
        company="Martin SARL",
    )
    invoice = _invoice(db, debtor)
    row = _send(db, mail_gateway, debtor.id, _reminder(invoice))

    [received] = sink.received
    message = received.message
    assert received.recipients == [DEBTOR_EMAIL]
    assert message["Subject"].startswith(subject)
    assert message.get_content_type() == "multipart/mixed"
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    text, markup = plain.get_content(), html.get_content()
    for body in (text, markup):
        assert legal in body and attached in body
        assert "Relance Demo SAS" in body and "SIREN" in body
    assert "Malgré nos relances" in text
    # Renders in common clients: inline styles only, nothing fetched from outside.
    assert 'style="' in markup and "<link" not in markup and "<style" not in markup
    assert not re.search(r'src="https?:', markup)
    [pdf] = list(message.iter_attachments())
    assert pdf.get_filename() == "F-2026-0042.pdf"
    assert pdf.get_content().startswith(b"%PDF")
    # Proof of sending: the exact bytes the server received, its queue id, the Message-ID.
    assert row.status == MessageStatus.SENT and row.provider_id == message["Message-ID"]
    extra = row.extra or {}
    assert extra["sha256"] == hashlib.sha256(received.data).hexdigest()
    assert extra["smtp_response"].startswith("2.0.0 Ok: queued as Q")
    eml = get_settings().var_dir / "mail" / "sent" / extra["eml"]
    assert eml.read_bytes() == received.data


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("currency", ["USD", "GBP"])
def test_the_legal_mentions_of_a_bill_in_another_currency_claim_no_eur_40(
    db: Session, sink: Sink, mail_gateway: SmtpMailGateway, language: str, currency: str
) -> None:
    """The EUR 40 indemnity (D441-5) is owed here on invoices in euros only: the e-mail about a
    bill in dollars or pounds states the late-payment interest and no indemnity."""
    debtor = make_debtor(
        db, channels=("email",), email=DEBTOR_EMAIL, language=language, segment="b2b"
    )
    invoice = make_invoice(
        db, debtor, 123450, issued=date(2026, 10, 1), due=date(2026, 11, 1), currency=currency
    )
    _send(db, mail_gateway, debtor.id, _reminder(invoice))
    [received] = sink.received
    plain = received.message.get_body(preferencelist=("plain",))
    assert plain is not None
    text = " ".join(plain.get_content().split())
    assert "L441-10" in text  # the interest is still stated
    assert "EUR 40" not in text and "40 €" not in text and "D441-5" not in text


@pytest.mark.parametrize(
    ("language", "subject", "attached"),
    [
        ("fr", "Deuxième relance : factures F-2026-0042 et F-2026-0043", "une copie des factures"),
        ("en", "Second reminder: invoices F-2026-0042 and F-2026-0043", "copies of invoices"),
    ],
)
def test_a_reminder_about_two_invoices_names_them_in_the_plural(
    db: Session, sink: Sink, mail_gateway: SmtpMailGateway, language: str, subject: str,
    attached: str,
) -> None:  # fmt: skip
    """The subject read "Deuxième relance : facture F-2026-0042, F-2026-0043"."""
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL, language=language)
    first, second = _invoice(db, debtor), _invoice(db, debtor, "F-2026-0043")
    mail = OutboundMail(
        idempotency_key="dunning:g1:firm",
        paragraphs=("Malgré nos relances, les factures restent impayées.",),
        stage="firm",
        invoice_ids=(first.id, second.id),
    )
    _send(db, mail_gateway, debtor.id, mail)

    message = sink.received[0].message
    assert message["Subject"].startswith(subject)
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None
    conjunction = {"fr": "et", "en": "and"}[language]
    assert f"{attached} F-2026-0042 {conjunction} F-2026-0043" in plain.get_content()
    assert len(list(message.iter_attachments())) == 2


def test_headers_thread_unsubscribe_and_auto_submitted(
    db: Session, sink: Sink, mail_gateway: SmtpMailGateway
) -> None:
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    earlier = debtor_wrote_by_mail(db, debtor)
    invoice = _invoice(db, debtor)
    _send(db, mail_gateway, debtor.id, _reminder(invoice))

    message = sink.received[0].message
    assert re.fullmatch(r"<[0-9a-f]{40}@creancier\.example>", message["Message-ID"])
    assert message["In-Reply-To"] == earlier.provider_id
    assert earlier.provider_id in message["References"]
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    links = re.findall(r"<([^>]+)>", message["List-Unsubscribe"])
    assert links[0].startswith("http://testserver/mail/unsubscribe/")
    assert links[1] == "mailto:relances@creancier.example?subject=unsubscribe"


def test_a_reply_in_the_thread_keeps_the_subject_and_says_auto_replied(
    db: Session, sink: Sink, mail_gateway: SmtpMailGateway
) -> None:
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    debtor_wrote_by_mail(db, debtor)
    _send(
        db, mail_gateway, debtor.id, OutboundMail(idempotency_key="reply:x", paragraphs=("Merci.",))
    )
    message = sink.received[0].message
    assert message["Subject"] == "Re: Rappel : facture F-1"
    assert message["Auto-Submitted"] == "auto-replied"
    assert not list(message.iter_attachments())


def test_discreet_reminder_carries_no_amount_attachment_or_link(
    db: Session, sink: Sink, mail_gateway: SmtpMailGateway
) -> None:
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    invoice = _invoice(db, debtor)
    _send(db, mail_gateway, debtor.id, _reminder(invoice, discreet=True))
    message = sink.received[0].message
    assert not list(message.iter_attachments())
    assert "F-2026-0042" not in message["Subject"]


def test_retried_send_goes_out_once(db: Session, sink: Sink, mail_gateway: SmtpMailGateway) -> None:
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    invoice = _invoice(db, debtor)
    first = _send(db, mail_gateway, debtor.id, _reminder(invoice))
    again = _send(db, mail_gateway, debtor.id, _reminder(invoice))
    assert again.id == first.id and len(sink.received) == 1


def test_temporary_smtp_failure_is_retried_once_then_never_again(
    db: Session, sink: Sink, mail_gateway: SmtpMailGateway
) -> None:
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    invoice = _invoice(db, debtor)
    sink.fail_next = ["451 4.3.0 Try again later"]
    with pytest.raises(DeliveryError) as failed:
        _send(db, mail_gateway, debtor.id, _reminder(invoice))
    assert failed.value.retryable and failed.value.code == "smtp_451"
    _send(db, mail_gateway, debtor.id, _reminder(invoice))
    _send(db, mail_gateway, debtor.id, _reminder(invoice))
    assert len(sink.received) == 1
    assert db.scalars(select(Message).where(Message.channel == "email")).one().status == "sent"


def test_a_claim_left_by_a_dead_worker_is_never_sent_blindly(
    db: Session, sink: Sink, mail_gateway: SmtpMailGateway
) -> None:
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    invoice = _invoice(db, debtor)
    sink.fail_next = ["451 4.3.0 Try again later"]
    with pytest.raises(DeliveryError):
        _send(db, mail_gateway, debtor.id, _reminder(invoice))
    row = db.scalars(select(Message).where(Message.channel == "email")).one()
    row.status = MessageStatus.QUEUED  # claimed, then the worker died during the SMTP session
    db.flush()
    with pytest.raises(DeliveryError) as refused:
        _send(db, mail_gateway, debtor.id, _reminder(invoice))
    assert refused.value.code == "mail_already_attempted" and not refused.value.retryable
    assert sink.received == []


def test_one_connection_serves_many_messages(
    db: Session, sink: Sink, mail_gateway: SmtpMailGateway
) -> None:
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    for n in range(3):
        _send(db, mail_gateway, debtor.id, OutboundMail(idempotency_key=f"k{n}", paragraphs=("x",)))
    assert len(sink.received) == 3
    assert sink.connections == 1 and mail_gateway.transport.connections_opened == 1


def test_per_domain_rate_cap_spaces_one_domain_only() -> None:
    limiter = DomainRateLimiter(rate=20)
    started = time.monotonic()
    for _ in range(3):
        limiter.wait("gmail.com")
    assert time.monotonic() - started >= 0.09  # 3 sends at 20/s: two 50 ms gaps
    assert limiter.wait("orange.fr") == 0.0


def test_dkim_signature_verifies(
    db: Session, sink: Sink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    import base64

    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    monkeypatch.setenv("DKIM_PRIVATE_KEY_PATH", str(key))
    monkeypatch.setenv("DKIM_SELECTOR", "s2026")
    get_settings.cache_clear()
    gateway = SmtpMailGateway(get_settings())
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    invoice = _invoice(db, debtor)
    _send(db, gateway, debtor.id, _reminder(invoice))
    data = sink.received[0].data
    assert data.startswith(b"DKIM-Signature:")
    signed = data.split(b"\r\n\r\n", 1)[0].lower()
    assert b"list-unsubscribe-post" in signed.split(b"h=", 1)[1].split(b";", 1)[0].replace(
        b"\r\n", b""
    )

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"s2026._domainkey.creancier.example."
        return record

    assert dkim.verify(data, dnsfunc=dns)
    assert not dkim.verify(data.replace(b"Malgr", b"MALGR"), dnsfunc=dns)  # tampered body
    gateway.transport.close()


def test_import_validates_and_normalises_addresses() -> None:
    from relance.contacts.email_address import normalise_email
    from relance.errors import BadInput

    assert normalise_email(" Camille.Martin@Client.Example ") == "camille.martin@client.example"
    with pytest.raises(BadInput):
        normalise_email("camille@@client.example")
    with pytest.raises(BadInput):
        normalise_email("not an address")
