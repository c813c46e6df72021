"""The demo debtors' mailbox: what the local SMTP mailbox received (relance/sandbox/mail_sink.py),
read back from its `.eml` files, and a debtor's reply written as a mail client would write it.

The reply quotes the e-mail it answers under an "On … wrote:" header and threads it with
In-Reply-To/References, so the inbound path strips the quote and finds the thread exactly as it
does for a real client's reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime, getaddresses, make_msgid, parseaddr, parsedate_to_datetime
from pathlib import Path

from relance.db.base import utcnow
from relance.errors import NotFound

# The names mail_sink writes: a UTC timestamp and a sequence number. Anything else is refused
# before the file system is touched (no path outside the mailbox can be named).
NAME = re.compile(r"^\d{8}T\d{12}-\d{5}\.eml$")
QUOTE_HEADER = {"fr": "Le {when}, {who} a écrit :", "en": "On {when}, {who} wrote:"}


@dataclass(frozen=True)
class Mail:
    name: str
    subject: str
    sender: str
    recipients: tuple[str, ...]
    date: str
    message_id: str
    references: str
    text: str
    html: str | None
    attachments: tuple[str, ...]


def _parse(name: str, data: bytes) -> Mail:
    message = message_from_bytes(data, policy=default_policy)
    assert isinstance(message, EmailMessage)
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    return Mail(
        name=name,
        subject=str(message.get("Subject", "")),
        sender=str(message.get("From", "")),
        recipients=tuple(a.lower() for _, a in getaddresses([str(message.get("To", ""))])),
        date=str(message.get("Date", "")),
        message_id=str(message.get("Message-ID", "")),
        references=str(message.get("References", "")),
        text=plain.get_content() if plain is not None else "",
        html=html.get_content() if html is not None else None,
        attachments=tuple(
            str(p.get_filename() or "attachment") for p in message.iter_attachments()
        ),
    )


def inbox(folder: Path, address: str) -> list[Mail]:
    """The e-mails addressed to `address`, newest first."""
    if not folder.is_dir():
        return []
    wanted = address.lower()
    mails = (_parse(p.name, p.read_bytes()) for p in folder.iterdir() if NAME.match(p.name))
    return sorted((m for m in mails if wanted in m.recipients), key=lambda m: m.name, reverse=True)


def read(folder: Path, name: str, address: str) -> Mail:
    """One e-mail of `address`'s mailbox; NotFound for any other name or recipient."""
    path = folder / name
    if not NAME.match(name) or not path.is_file():
        raise NotFound("mail_not_found", "no such e-mail in this mailbox")
    mail = _parse(name, path.read_bytes())
    if address.lower() not in mail.recipients:
        raise NotFound("mail_not_found", "no such e-mail in this mailbox")
    return mail


def reply(original: Mail, *, sender: str, text: str, language: str) -> bytes:
    """The debtor's answer as raw RFC 5322 bytes: their words above the quoted original."""
    message = EmailMessage(policy=default_policy)
    message["From"] = sender
    message["To"] = original.sender
    subject = original.subject
    message["Subject"] = subject if subject.lower().startswith(("re:", "ré:")) else f"Re: {subject}"
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain="simulator.relance.invalid")
    if original.message_id:
        message["In-Reply-To"] = original.message_id
        message["References"] = f"{original.references} {original.message_id}".strip()
    try:
        when = parsedate_to_datetime(original.date).strftime("%d/%m/%Y %H:%M")
    except (TypeError, ValueError):
        when = original.date
    who = parseaddr(original.sender)[1] or original.sender
    header = QUOTE_HEADER.get(language, QUOTE_HEADER["en"]).format(when=when, who=who)
    quoted = "\n".join(f"> {line}" if line else ">" for line in original.text.splitlines())
    message.set_content(f"{text.strip()}\n\n{header}\n{quoted}\n")
    return message.as_bytes()
