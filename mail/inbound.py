"""Inbound e-mail: one raw RFC 5322 message in, at most one e-mail answer out, in the thread.

Order, as for SMS (messaging/service.py): the request is authenticated (endpoint), then the
message is claimed by its Message-ID in `webhook_events` so a re-delivery does nothing; bounces
and automatic answers are recorded and stop there (no assistant, no answer: no mail loop); the
text is cut to what the person wrote (quoted history and signature stripped, French and English
headers, mail-parser-reply); STOP/unsubscribe words opt the address out of e-mail; anything else
goes to the same conversation path as an SMS (`relance.conversations.service.handle_inbound`,
with a typed `Inbound`), which detects the language, holds it for a collector or asks Rasa — and
an unknown sender gets the same answer as an unknown number, with no debt detail. The answers
go back as one e-mail threaded on the debtor's message.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP
from email.policy import default as default_policy
from email.utils import format_datetime
from typing import Any

from mailparser_reply import EmailReplyParser
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mail.addresses import first_address
from mail.classify import Kind, bounce_details, classify
from mail.compose import message_id_for, to_bytes
from mail.gateway import SmtpMailGateway
from relance import audit
from relance.contacts import service as contacts
from relance.conversations import reply_retry, repository
from relance.conversations.ports import DeliveryError, OutboundMail
from relance.conversations.service import Inbound, handle_inbound, store_inbound
from relance.db.base import utcnow
from relance.db.models import AuditEvent, Contact, Message, Task, WebhookEvent
from relance.db.models.enums import Author, Channel, ContactStatus
from relance.errors import BadInput
from relance.private_files import private_dir, write_private
from relance.rasa_client import client_from_settings
from relance.settings import get_settings

PROVIDER = "mail"
MAX_BODY_CHARACTERS = 4000  # what reaches the assistant: a reply, not a thread
MAX_MESSAGE_BYTES = 10 * 1024 * 1024  # a reply with a few scanned pages attached
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
ATTACHMENT_TYPES = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}
_MESSAGE_ID = re.compile(r"<[^<>\s]{3,250}>")
_OPT_OUT_WORDS = {
    "STOP",
    "ARRET",
    "UNSUBSCRIBE",
    "DESINSCRIPTION",
    "DESINSCRIRE",
    "DESABONNER",
    "DESABONNEMENT",
    "STOP EMAIL",
    "STOP MAIL",
    "STOP E MAIL",
}


@dataclass(frozen=True)
class ParsedMail:
    """The parts of a raw message the channel uses."""

    message_id: str
    sender: str | None
    subject: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    text: str
    message: EmailMessage


@dataclass
class Outcome:
    status: str  # reply_sent, duplicate, bounce, auto_reply, opted_out, unknown_sender, held...
    message_id: str
    replies: list[str] = field(default_factory=list)
    reply_message_id: str | None = None


def parse(raw: bytes) -> ParsedMail:
    """Read the message; BadInput for what no mail software would send (no Message-ID, no From)."""
    message = message_from_bytes(raw, policy=default_policy)
    if not isinstance(message, EmailMessage) or not message.keys():
        raise BadInput("invalid_message", "the body is not an RFC 5322 message")
    ids = _MESSAGE_ID.findall(str(message.get("Message-ID") or ""))
    if not ids:
        raise BadInput("missing_message_id", "the message has no valid Message-ID header")
    return ParsedMail(
        message_id=ids[0],
        sender=first_address(str(message.get("From") or "")),
        subject=_one_line(str(message.get("Subject") or ""))[:300],
        in_reply_to=tuple(_MESSAGE_ID.findall(str(message.get("In-Reply-To") or ""))),
        references=tuple(_MESSAGE_ID.findall(str(message.get("References") or ""))),
        text=_text_of(message),
        message=message,
    )


def _one_line(text: str) -> str:
    """A header value as one line: an encoded word (`=?utf-8?q?Hi=0D=0ABcc:...?=`) decodes to
    CR/LF, which our "Re: <subject>" answer may not carry (the e-mail library refuses it, and
    the inbound hook answered 500 to every retry of that message)."""
    return " ".join("".join(" " if unicodedata.category(c) == "Cc" else c for c in text).split())


def handle_raw(session: Session, raw: bytes, gateway: SmtpMailGateway | None = None) -> Outcome:
    """The one inbound path: `POST /mail/inbound` and the IMAP poller (mail/imap.py) both call
    it with the raw message, so a reply is handled the same whichever way it arrives."""
    check_size(len(raw))
    parsed = parse(raw)
    if not _claim(session, parsed):
        return Outcome(status="duplicate", message_id=parsed.message_id)
    kind = classify(parsed.message, parsed.sender)
    if kind == Kind.BOUNCE:
        return _bounce(session, parsed)
    if parsed.sender is None:
        raise BadInput("invalid_sender", "From is not a valid e-mail address")
    if kind == Kind.AUTO_REPLY:
        return _auto_reply(session, parsed)
    return _reply(session, parsed, gateway or SmtpMailGateway())


def check_size(size: int) -> None:
    """Refused whichever way it came (the IMAP poller checks before downloading it)."""
    if size > MAX_MESSAGE_BYTES:
        raise BadInput("message_too_large", f"the message is larger than {MAX_MESSAGE_BYTES} bytes")


def strip_reply(text: str) -> str:
    """What the person wrote: quoted history, quote headers and signature removed."""
    parsed = EmailReplyParser(languages=["fr", "en"]).read(text=text)
    latest = parsed.replies[0].body if parsed.replies else text
    return latest.strip()[:MAX_BODY_CHARACTERS]


# -- kinds -----------------------------------------------------------------------------------
def _bounce(session: Session, parsed: ParsedMail) -> Outcome:
    """Mark the addresses undeliverable: the dispatcher's compliance check then skips them and
    the next channel of the stage is used."""
    details = bounce_details(parsed.message)
    for address in details.recipients:
        contact = contacts.contact_for(session, Channel.EMAIL, address)
        if contact is None:
            continue
        if details.permanent:
            contact.status = ContactStatus.BOUNCED
        contacts.record_failure(
            session, contact, error_code=details.status or "bounce", reference=parsed.message_id
        )
        if details.permanent:
            contact.status = ContactStatus.BOUNCED  # record_failure sets `failing` first
        audit.record(
            session,
            actor="system",
            action="mail.bounced",
            entity=contact,
            debtor_id=contact.debtor_id,
            status=details.status,
            permanent=details.permanent,
            dsn_message_id=parsed.message_id,
        )
    if not details.recipients:
        audit.record(
            session, actor="system", action="mail.bounce_unmatched", provider_id=parsed.message_id
        )
    return Outcome(status="bounce", message_id=parsed.message_id)


def _auto_reply(session: Session, parsed: ParsedMail) -> Outcome:
    """Kept for the collectors (an out-of-office may say when the debtor is back), never answered."""
    contact = _contact(session, parsed.sender)
    if contact is not None:
        conversation = repository.conversation_for_debtor(session, contact.debtor)
        message = store_inbound(session, conversation, _inbound(parsed, parsed.text[:1000]))
        message.extra = {**(message.extra or {}), "auto_reply": True}
    audit.record(
        session,
        actor="system",
        action="mail.auto_reply_ignored",
        debtor_id=contact.debtor_id if contact is not None else None,
        provider_id=parsed.message_id,
    )
    return Outcome(status="auto_reply", message_id=parsed.message_id)


def _reply(session: Session, parsed: ParsedMail, gateway: SmtpMailGateway) -> Outcome:
    assert parsed.sender is not None
    body = strip_reply(parsed.text)
    contact = _contact(session, parsed.sender)
    threaded = _thread_debtor(session, parsed)
    if contact is not None and threaded is not None and threaded != contact.debtor_id:
        audit.record(
            session,
            actor="system",
            action="mail.thread_sender_mismatch",
            debtor_id=contact.debtor_id,
            thread_debtor_id=threaded,
            provider_id=parsed.message_id,
        )
    inbound = _inbound(parsed, body)
    if contact is not None and _is_opt_out(body):
        return _opt_out(session, parsed, contact, inbound)
    if contact is not None and contacts.is_opted_out(session, Channel.EMAIL, parsed.sender):
        conversation = repository.conversation_for_debtor(session, contact.debtor)
        store_inbound(session, conversation, inbound)
        audit.record(
            session,
            actor="debtor",
            action="message.received_while_opted_out",
            debtor_id=contact.debtor_id,
            channel=Channel.EMAIL,
        )
        return Outcome(status="opted_out", message_id=parsed.message_id)
    if contact is None and threaded is not None:
        # Someone else answers the debtor's thread (a colleague, a forward): no debt detail to
        # them, but the collectors see it.
        session.add(
            Task(
                kind="review_unknown_sender",
                debtor_id=threaded,
                details={"sender": parsed.sender, "message_id": parsed.message_id},
            )
        )
    rasa = client_from_settings()
    try:
        result = handle_inbound(session, rasa, inbound)
    finally:
        rasa.close()
    if contact is not None and result.inbound_message_id is not None:
        _keep_attachments(session, parsed, contact, result.inbound_message_id)
    outcome = Outcome(status=result.status, message_id=parsed.message_id, replies=result.replies)
    if not result.replies:
        return outcome
    if contact is None or result.conversation_id is None:
        if _unknown_sender_answered_enough(session, parsed, gateway.settings):
            outcome.status = "unknown_sender_capped"
            return outcome
        return _answer_unknown_sender(session, gateway, parsed, result.replies, outcome)
    conversation = repository.conversation_for_debtor(session, contact.debtor)
    mail = OutboundMail(
        idempotency_key=f"reply:{parsed.message_id}",
        paragraphs=tuple(result.replies),
        author=Author.BOT,
        reply_rows=tuple(result.reply_message_ids),
    )
    try:
        sent = gateway.send_mail(session, conversation=conversation, contact=contact, mail=mail)
    except DeliveryError as exc:
        # Kept (the caller commits: the failed row stays visible) and retried by the worker when
        # the failure is transient; a permanent one goes to a collector (reply_retry).
        outcome.status = reply_retry.after_failure(
            session, conversation=conversation, contact=contact, error=exc, mail=mail
        )
        return outcome
    outcome.reply_message_id = sent.provider_id
    return outcome


def _opt_out(session: Session, parsed: ParsedMail, contact: Contact, inbound: Inbound) -> Outcome:
    """STOP by e-mail: this address gets no more e-mail; no answer is sent (the opt-out is the
    answer, and an e-mail confirming it would be one more e-mail)."""
    conversation = repository.conversation_for_debtor(session, contact.debtor)
    message = store_inbound(session, conversation, inbound)
    message.extra = {**(message.extra or {}), "keyword": "STOP"}
    contacts.opt_out(session, contact, source=Channel.EMAIL, keyword=_words(inbound.body))
    return Outcome(status="opted_out", message_id=parsed.message_id)


def _unknown_sender_answered_enough(session: Session, parsed: ParsedMail, settings: Any) -> bool:
    """At most `mail_unknown_sender_answers_per_day` answers to one address not on file: its
    From can be forged, so a flood of messages "from" a stranger would have Relance mail that
    stranger each time. Over the cap nobody is mailed; the refusal is audited without the
    address (the inbound claim keeps the message's arrival)."""
    assert parsed.sender is not None
    since = utcnow() - timedelta(days=1)
    answered = session.scalars(
        select(AuditEvent.details).where(
            AuditEvent.action == "mail.unknown_sender_answered", AuditEvent.at >= since
        )
    ).all()
    sender = parsed.sender.lower()
    count = sum(1 for d in answered if str((d or {}).get("address") or "").lower() == sender)
    if count < settings.mail_unknown_sender_answers_per_day:
        return False
    audit.record(
        session,
        actor="system",
        action="mail.unknown_sender_not_answered",
        message_id=parsed.message_id,
        reason="daily_cap",
        answered_last_24h=count,
    )
    return True


def _answer_unknown_sender(
    session: Session,
    gateway: SmtpMailGateway,
    parsed: ParsedMail,
    replies: list[str],
    outcome: Outcome,
) -> Outcome:
    """The unknown-address answer (no debt detail) straight back to the sender, in the thread.

    It has no conversation or Message row (the sender is nobody on file): a transient SMTP
    failure keeps these very bytes on a reply retry, sent again by the worker (same Message-ID),
    a permanent one leaves a task for a person (reply_retry.after_unknown_sender_failure). The
    retry row is written before the send (`sending`) and removed once the server took it."""
    settings = gateway.settings
    key = f"unknown:{parsed.message_id}"
    message_id = message_id_for(key, settings)
    outgoing = EmailMessage(policy=SMTP)
    outgoing["From"] = settings.mail_from
    outgoing["To"] = parsed.sender
    subject = parsed.subject or settings.creditor_name
    outgoing["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
    outgoing["Date"] = format_datetime(utcnow())
    outgoing["Message-ID"] = message_id
    outgoing["In-Reply-To"] = parsed.message_id
    outgoing["References"] = " ".join((*parsed.references, parsed.message_id))
    outgoing["Auto-Submitted"] = "auto-replied"
    outgoing.set_content("\n\n".join(replies) + "\n")
    assert parsed.sender is not None
    data = to_bytes(outgoing, settings)
    # Committed with the inbound claim, before SMTP: a process dying mid-send leaves this row
    # for the worker (failed as an unknown outcome, a task for a person), not nothing at all.
    reply_retry.unknown_sender_in_flight(session, address=parsed.sender, mail_key=key, data=data)
    try:
        gateway.answer_unknown_sender(session, recipient=parsed.sender, data=data)
    except DeliveryError as exc:
        outcome.status = reply_retry.after_unknown_sender_failure(
            session, address=parsed.sender, mail_key=key, data=data, error=exc
        )
        return outcome
    reply_retry.unknown_sender_answered(session, mail_key=key)
    outcome.reply_message_id = message_id
    return outcome


# -- helpers ---------------------------------------------------------------------------------
def _claim(session: Session, parsed: ParsedMail) -> bool:
    """Insert the event by Message-ID unless it exists: False for a re-delivered message."""
    values: dict[str, Any] = {
        "provider": PROVIDER,
        "event_id": parsed.message_id[:128],
        "kind": "mail.inbound",
        "payload": {"from": parsed.sender, "subject": parsed.subject},
        "received_at": utcnow(),
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(WebhookEvent)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["provider", "event_id"])
        .returning(WebhookEvent.id)
    )
    return session.execute(statement).first() is not None


def _contact(session: Session, sender: str | None) -> Contact | None:
    if sender is None:
        return None
    return repository.find_contact(session, Channel.EMAIL, sender)


def _thread_debtor(session: Session, parsed: ParsedMail) -> int | None:
    """The debtor whose e-mail this message answers (In-Reply-To first, then References)."""
    for message_id in (*parsed.in_reply_to, *reversed(parsed.references)):
        row = session.execute(
            select(Message.conversation_id).where(Message.provider_id == message_id)
        ).first()
        if row is None:
            continue
        from relance.db.models import Conversation

        conversation = session.get(Conversation, row[0])
        if conversation is not None and conversation.debtor_id is not None:
            return conversation.debtor_id
    return None


def _inbound(parsed: ParsedMail, body: str) -> Inbound:
    assert parsed.sender is not None
    return Inbound(
        channel=Channel.EMAIL,
        address=parsed.sender,
        body=body,
        provider_id=parsed.message_id,
        extra={
            "subject": parsed.subject,
            "in_reply_to": list(parsed.in_reply_to),
            "references": list(parsed.references[-20:]),
        },
    )


def _words(body: str) -> str:
    first = body.strip().splitlines()[0] if body.strip() else ""
    plain = "".join(c for c in unicodedata.normalize("NFKD", first) if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^A-Za-z0-9]+", " ", plain).split()).upper()


def _is_opt_out(body: str) -> bool:
    """Only a message that *is* the word counts (as for SMS): "stop the calls, I'll pay" goes to
    the assistant."""
    lines = [line for line in body.strip().splitlines() if line.strip()]
    return len(lines) == 1 and _words(body) in _OPT_OUT_WORDS


def _text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    text = content if isinstance(content, str) else ""
    if part.get_content_type() == "text/html":
        text = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", text, flags=re.S | re.I)
        text = re.sub(r"<br\s*/?>|</p>|</div>", "\n", text, flags=re.I)
        text = re.sub(r"<[^>]+>", " ", text)
        import html

        text = html.unescape(text)
    return text


def _keep_attachments(
    session: Session, parsed: ParsedMail, contact: Contact, message_id: int
) -> None:
    """A proof of payment or a photo: stored owner-only, never opened or rendered by us, and a
    review task for a person. Other types and oversized files are listed, not kept."""
    kept: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    folder = get_settings().var_dir / "mail" / "inbound"
    for part in parsed.message.iter_attachments():
        content_type = part.get_content_type()
        data = part.get_payload(decode=True)
        name = str(part.get_filename() or "attachment")[:120]
        if not isinstance(data, bytes):
            continue
        if content_type not in ATTACHMENT_TYPES or len(data) > MAX_ATTACHMENT_BYTES:
            refused.append({"name": name, "content_type": content_type, "size": len(data)})
            continue
        digest = hashlib.sha256(data).hexdigest()
        path = private_dir(folder) / f"{digest}.{ATTACHMENT_TYPES[content_type]}"
        write_private(path, data)
        kept.append(
            {"name": name, "content_type": content_type, "size": len(data), "sha256": digest}
        )
    if not kept and not refused:
        return
    message = session.get(Message, message_id)
    if message is not None:
        message.extra = {
            **(message.extra or {}),
            "attachments": kept,
            "refused_attachments": refused,
        }
    if kept:
        session.add(
            Task(
                kind="review_attachment",
                debtor_id=contact.debtor_id,
                details={"message_id": message_id, "attachments": kept},
            )
        )
