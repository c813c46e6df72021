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

from mail import mime
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


def word(
    templates: Templates,
    name: str,
    language: str,
    memo: dict[str, str] | None = None,
    **variables: Any,
) -> str:
    """One `utter_mail_*` response in the e-mail channel's variant.

    `memo`: the texts a batch of e-mails already rendered. A response with one variant gives
    the same text for the same values (the footer, the legal mentions: the same for a whole
    batch), so it is rendered once; one with several is rendered each time (its random pick)."""
    if memo is None or len(templates.get(name) or ()) != 1:
        return render(templates, name, language=language, channel="email", variables=variables)
    key = repr((name, language, sorted(variables.items())))
    if key not in memo:
        memo[key] = render(templates, name, language=language, channel="email", variables=variables)
    return memo[key]


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
    indemnity: bool = False,
    portal_url: str | None = None,
    templates: Templates | None = None,
    memo: dict[str, str] | None = None,
) -> Parts:
    """The wording around the body; `subject` given for a reply in a thread ("Re: …").

    `indemnity`: the legal mentions name the EUR 40 recovery indemnity (a business's invoices
    in euros, `relance.letters.amounts.indemnity_applies`); without it they name the interest only.

    The active wording is read once for the whole e-mail (it was read once per piece, three to
    six times per e-mail): an admin's edit still applies from the next e-mail, and the pieces of
    one e-mail always come from the same version. A batch passes the `templates` it read once
    for all its e-mails, and its `memo` of texts already rendered (see `word`).
    """
    templates = templates if templates is not None else active_templates(session)
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
            memo,
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
            memo,
            stage=stage,
            invoice_refs=invoice_refs or None,
            **identity,
        ),
        paragraphs=paragraphs,
        language=language,
        stage=stage,
        pay_url=pay_url,
        pay_label=word(templates, "utter_mail_pay_button", language, memo, **identity)
        if pay_url
        else None,
        portal_note=word(
            templates, "utter_mail_portal", language, memo, portal_url=portal_url, **identity
        )
        if portal_url
        else None,
        attachments_note=note,
        legal=word(
            templates,
            "utter_mail_legal",
            language,
            memo,
            segment=segment,
            indemnity=indemnity,
            **identity,
        )
        if with_legal
        else None,
        footer=word(templates, "utter_mail_footer", language, memo, **identity),
        unsubscribe=word(
            templates,
            "utter_mail_unsubscribe",
            language,
            memo,
            unsubscribe_url=unsubscribe_url,
            **identity,
        )
        if unsubscribe_url
        else None,
    )


@cache
def _environment() -> Environment:
    # auto_reload off: the layout ships with the code (a change comes with a restart), and
    # checking the file's date cost a stat per e-mail.
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        auto_reload=False,
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


def message_bytes(parts: Parts, envelope: Envelope, settings: Settings) -> bytes:
    """The exact bytes to send, DKIM-signed when a key is configured: written directly
    (`mail.mime`, ~10x cheaper), or by the `email` package (`build`) for what the direct
    writer does not do (a non-ASCII address or attachment name)."""
    if not _direct_writable(envelope, settings):
        return to_bytes(build(parts, envelope, settings), settings)
    return _signed(_direct(parts, envelope, settings), settings)


def _direct_writable(envelope: Envelope, settings: Settings) -> bool:
    return mime.is_ascii(
        envelope.sender,
        envelope.recipient,
        envelope.message_id,
        envelope.in_reply_to,
        envelope.unsubscribe_url,
        settings.mail_reply_to,
        *envelope.references,
        *(a.filename + a.content_type for a in envelope.attachments),
    ) and not any('"' in a.filename or "\\" in a.filename for a in envelope.attachments)


def _direct(parts: Parts, envelope: Envelope, settings: Settings) -> bytes:
    """The same headers, in the same order, and the same parts as `build` gives."""
    head = [
        mime.header("From", mime.address(settings.creditor_name, envelope.sender)),
        mime.header("To", envelope.recipient),
    ]
    if settings.mail_reply_to:
        head.append(mime.header("Reply-To", settings.mail_reply_to))
    head += [
        mime.header("Subject", parts.subject),
        mime.header("Date", format_datetime(utcnow())),
        mime.header("Message-ID", envelope.message_id),
    ]
    if envelope.in_reply_to:
        head.append(mime.header("In-Reply-To", envelope.in_reply_to))
    if envelope.references:
        head.append(mime.header("References", " ".join(envelope.references)))
    if envelope.unsubscribe_url:
        mailto = f"mailto:{envelope.sender}?subject=unsubscribe"
        head.append(mime.header("List-Unsubscribe", f"<{envelope.unsubscribe_url}>, <{mailto}>"))
        head.append(mime.header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    if envelope.auto_submitted:
        head.append(mime.header("Auto-Submitted", envelope.auto_submitted))
    head.append(b"MIME-Version: 1.0\r\n")
    alternative = mime.multipart(
        "alternative",
        [
            mime.text_part(parts.text, "plain"),
            mime.text_part(render_html(parts, settings.creditor_name), "html", mime_version=True),
        ],
    )
    if envelope.attachments:
        content_type, body = mime.multipart(
            "mixed",
            [
                alternative[0] + mime.CRLF + alternative[1],
                *(
                    mime.attachment_part(a.filename, a.data, a.content_type)
                    for a in envelope.attachments
                ),
            ],
        )
    else:
        content_type, body = alternative
    return b"".join(head) + content_type + mime.CRLF + body


def to_bytes(message: EmailMessage, settings: Settings) -> bytes:
    """The exact bytes sent (CRLF line ends), DKIM-signed when a key is configured."""
    return _signed(message.as_bytes(policy=SMTP), settings)


def _signed(raw: bytes, settings: Settings) -> bytes:
    """`raw` with its DKIM-Signature in front, covering the SIGNED_HEADERS it has."""
    if not settings.dkim_private_key_path:
        return raw
    head = raw.split(b"\r\n\r\n", 1)[0].lower()
    present = {line.split(b":", 1)[0] for line in head.split(b"\r\n") if line[:1] not in b" \t"}
    signature = dkim.sign(
        raw,
        settings.dkim_selector.encode(),
        domain_of(settings.mail_from).encode(),
        _private_key(settings.dkim_private_key_path),
        include_headers=[h for h in SIGNED_HEADERS if h in present],
    )
    return bytes(signature) + raw


@cache
def _private_key(path: str) -> bytes:
    return Path(path).read_bytes()
