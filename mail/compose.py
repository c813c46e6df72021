"""Build one e-mail: wording → plain text + inline-styled HTML, headers, attachments, DKIM.

Every visible word comes from the wording (`utter_mail_*` and the body's own response, in the
conversation's language, channel `email`), so admins edit and version it in the console like the
SMS wording. The HTML is one table layout with inline styles and no external asset: it renders
the same in webmail and desktop clients, and nothing is fetched when it is opened.

Headers that make the e-mail a good citizen and a proof:
- `Message-ID` on the creditor's domain, derived from the send's idempotency key, so a retried
  job produces the very same id (and the claim on it stops a second send);
- `In-Reply-To`/`References`: the debtor's earlier e-mails in this conversation, so clients
  thread the whole case;
- `List-Unsubscribe` (signed HTTPS link and mailto) with `List-Unsubscribe-Post:
  List-Unsubscribe=One-Click` (RFC 8058), both covered by the DKIM signature as RFC 8058 asks;
- `Auto-Submitted: auto-generated` on reminders, `auto-replied` on the assistant's answers
  (RFC 3834: the debtor's own auto-responders must not answer them); a collector's reply has none.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from functools import cache
from pathlib import Path
from typing import Any

import dkim
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from mail.addresses import domain_of
from relance.db.base import utcnow
from relance.nlg.renderer import render
from relance.nlg.templates_store import Templates, active_templates
from relance.settings import Settings

TEMPLATES = Path(__file__).resolve().parent / "templates"
ACCENTS = {"firm": "#b44d12", "final": "#b42318", "formal_notice_announce": "#7a1f1f"}
DEFAULT_ACCENT = "#1f5f8b"
_URL = re.compile(r"https?://[^\s<>\"')]+[^\s<>\"').,;:!?]")
# Covered by DKIM (RFC 6376 §5.4.1 list, plus the RFC 8058 pair and the threading headers).
SIGNED_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"in-reply-to",
    b"references",
    b"reply-to",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"auto-submitted",
    b"content-type",
    b"mime-version",
)


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes
    content_type: str = "application/pdf"


@dataclass(frozen=True)
class Parts:
    """What the e-mail says, already in the debtor's language."""

    subject: str
    paragraphs: tuple[str, ...]
    language: str
    stage: str | None = None
    pay_url: str | None = None
    pay_label: str | None = None
    portal_note: str | None = None
    attachments_note: str | None = None
    legal: str | None = None
    footer: str = ""
    unsubscribe: str | None = None

    @property
    def text(self) -> str:
        blocks = [*self.paragraphs]
        if self.pay_url:
            blocks.append(f"{self.pay_label}: {self.pay_url}")
        blocks += [b for b in (self.portal_note, self.attachments_note, self.legal) if b]
        blocks.append("-- \n" + self.footer)  # the standard signature separator
        if self.unsubscribe:
            blocks.append(self.unsubscribe)
        return "\n\n".join(blocks) + "\n"


@dataclass(frozen=True)
class Envelope:
    sender: str
    recipient: str
    message_id: str
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    unsubscribe_url: str | None = None
    auto_submitted: str | None = None
    attachments: tuple[Attachment, ...] = field(default=())


def message_id_for(key: str, settings: Settings) -> str:
    """The same key always gives the same id, on the creditor's sending domain."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:40]
    return f"<{digest}@{domain_of(settings.mail_from)}>"


def word(templates: Templates, name: str, language: str, **variables: Any) -> str:
    """One `utter_mail_*` response in the e-mail channel's variant."""
    return render(templates, name, language=language, channel="email", variables=variables)


def render_parts(
    session: Session,
    settings: Settings,
    *,
    paragraphs: tuple[str, ...],
    language: str,
    stage: str | None,
    subject: str | None,
    invoice_refs: list[str],
    segment: str,
    pay_url: str | None,
    letter_reference: str | None,
    unsubscribe_url: str | None,
    with_legal: bool,
    portal_url: str | None = None,
) -> Parts:
    """The wording around the body; `subject` given for a reply in a thread ("Re: …").

    The active wording is read once for the whole e-mail (it was read once per piece, three to
    six times per e-mail): an admin's edit still applies from the next e-mail, and the pieces of
    one e-mail always come from the same version.
    """
    templates = active_templates(session)
    identity = {
        "creditor_name": settings.creditor_name,
        "creditor_phone": settings.creditor_phone,
        "creditor_address": settings.creditor_address or None,
        "creditor_siren": settings.creditor_siren or None,
    }
    note = None
    if invoice_refs or letter_reference:
        note = word(
            templates,
            "utter_mail_attachments",
            language,
            invoice_refs=invoice_refs,
            letter_reference=letter_reference,
            **identity,
        )
    return Parts(
        subject=subject
        or word(
            templates,
            "utter_mail_subject",
            language,
            stage=stage,
            invoice_refs=invoice_refs or None,
            **identity,
        ),
        paragraphs=paragraphs,
        language=language,
        stage=stage,
        pay_url=pay_url,
        pay_label=word(templates, "utter_mail_pay_button", language, **identity)
        if pay_url
        else None,
        portal_note=word(
            templates, "utter_mail_portal", language, portal_url=portal_url, **identity
        )
        if portal_url
        else None,
        attachments_note=note,
        legal=word(templates, "utter_mail_legal", language, segment=segment, **identity)
        if with_legal
        else None,
        footer=word(templates, "utter_mail_footer", language, **identity),
        unsubscribe=word(
            templates,
            "utter_mail_unsubscribe",
            language,
            unsubscribe_url=unsubscribe_url,
            **identity,
        )
        if unsubscribe_url
        else None,
    )


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"])
    )
    environment.filters["linked"] = linked
    return environment


def linked(text: str) -> Markup:
    """Escape `text`, then make its http(s) URLs clickable (the wording carries bare URLs)."""
    escaped = str(escape(text))
    return Markup(
        _URL.sub(
            lambda m: f'<a href="{m.group(0)}" style="color:#1f5f8b;">{m.group(0)}</a>', escaped
        )
    )


def render_html(parts: Parts, creditor_name: str) -> str:
    return (
        _environment()
        .get_template("mail.html")
        .render(
            language=parts.language,
            subject=parts.subject,
            creditor_name=creditor_name,
            accent=ACCENTS.get(parts.stage or "", DEFAULT_ACCENT),
            paragraphs=[linked(p) for p in parts.paragraphs],
            pay_url=parts.pay_url,
            pay_label=parts.pay_label,
            portal_note=linked(parts.portal_note) if parts.portal_note else None,
            attachments_note=parts.attachments_note,
            legal=parts.legal,
            footer=parts.footer,
            unsubscribe=linked(parts.unsubscribe) if parts.unsubscribe else None,
        )
    )


def build(parts: Parts, envelope: Envelope, settings: Settings) -> EmailMessage:
    message = EmailMessage(policy=SMTP)
    message["From"] = Address(settings.creditor_name, addr_spec=envelope.sender)
    message["To"] = envelope.recipient
    if settings.mail_reply_to:
        message["Reply-To"] = settings.mail_reply_to
    message["Subject"] = parts.subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = envelope.message_id
    if envelope.in_reply_to:
        message["In-Reply-To"] = envelope.in_reply_to
    if envelope.references:
        message["References"] = " ".join(envelope.references)
    if envelope.unsubscribe_url:
        mailto = f"mailto:{envelope.sender}?subject=unsubscribe"
        message["List-Unsubscribe"] = f"<{envelope.unsubscribe_url}>, <{mailto}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if envelope.auto_submitted:
        message["Auto-Submitted"] = envelope.auto_submitted
    message["Content-Language"] = parts.language
    message.set_content(parts.text)
    message.add_alternative(render_html(parts, settings.creditor_name), subtype="html")
    for attachment in envelope.attachments:
        maintype, subtype = attachment.content_type.split("/", 1)
        message.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return message


def to_bytes(message: EmailMessage, settings: Settings) -> bytes:
    """The exact bytes sent (CRLF line ends), DKIM-signed when a key is configured."""
    raw = message.as_bytes(policy=SMTP)
    if not settings.dkim_private_key_path:
        return raw
    signature = dkim.sign(
        raw,
        settings.dkim_selector.encode(),
        domain_of(settings.mail_from).encode(),
        _private_key(settings.dkim_private_key_path),
        include_headers=[h for h in SIGNED_HEADERS if message.get(h.decode()) is not None],
    )
    return bytes(signature) + raw


@cache
def _private_key(path: str) -> bytes:
    return Path(path).read_bytes()
