"""Debtor simulator (development and demo only): chat as a demo debtor in a browser.

Messages go through the real `POST /twilio/sms` path: the simulator signs a Twilio-shaped form with
the account's auth token and posts it to this very api, then shows the TwiML replies. Outbound
messages (reminders, payment thanks) are read back from the conversation's transcript.

E-mail: the mailbox page shows what the local SMTP mailbox of `make run` received for the
debtor's address (relance/simulator/mailbox.py); a reply is posted raw and HMAC-signed to
`POST /mail/inbound`, as an MTA pipe delivers production mail.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Annotated

import httpx
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from relance.db.models import Contact, Conversation, Debtor, Invoice, Message
from relance.db.models.enums import Channel, InvoiceStatus
from relance.errors import BadInput, NotFound, Unavailable
from relance.nlg.formatting import money
from relance.runtime.model_status import read_status
from relance.sandbox.mail_sink import mailbox_dir
from relance.settings import Settings
from relance.simulator import mailbox
from relance.web.deps import AppSettings, DbSession
from relance.web.ids import RowId

router = APIRouter(prefix="/simulator", tags=["simulator"], include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _require_enabled(settings: Settings) -> None:
    if settings.environment == "production":
        raise NotFound("simulator_disabled", "the debtor simulator is off in production")


@router.get("", response_class=HTMLResponse)
def pick_debtor(request: Request, db: DbSession, settings: AppSettings) -> HTMLResponse:
    _require_enabled(settings)
    debtors = db.scalars(select(Debtor).order_by(Debtor.language, Debtor.customer_number)).all()
    languages = {d.id: d.language for d in debtors}
    balances = {
        debtor_id: money(total, currency, languages.get(debtor_id, "fr"))
        for debtor_id, currency, total in db.execute(
            select(
                Invoice.debtor_id,
                Invoice.currency,
                func.sum(Invoice.amount_minor - Invoice.paid_minor),
            )
            .where(Invoice.status == InvoiceStatus.OPEN)
            .group_by(Invoice.debtor_id, Invoice.currency)
        )
    }
    return templates.TemplateResponse(
        request,
        "pick.html",
        {
            "debtors": debtors,
            "balances": balances,
            "model_status": read_status(settings.var_dir),
        },
    )


@router.get("/{debtor_id}", response_class=HTMLResponse)
def chat(debtor_id: RowId, request: Request, db: DbSession, settings: AppSettings) -> HTMLResponse:
    _require_enabled(settings)
    debtor = db.get(Debtor, debtor_id)
    if debtor is None:
        raise NotFound("debtor_not_found", "no such debtor")
    return templates.TemplateResponse(
        request,
        "chat.html",
        {
            "debtor": debtor,
            "messages": _transcript(db, debtor_id),
            "channels": _channels(debtor),
            "model_status": read_status(settings.var_dir),
        },
    )


@router.get("/{debtor_id}/transcript", response_class=HTMLResponse)
def transcript(
    debtor_id: RowId, request: Request, db: DbSession, settings: AppSettings
) -> HTMLResponse:
    _require_enabled(settings)
    return templates.TemplateResponse(
        request, "_messages.html", {"messages": _transcript(db, debtor_id)}
    )


@router.post("/{debtor_id}/send", response_class=HTMLResponse)
def send(
    debtor_id: RowId,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    text: Annotated[str, Form(min_length=1, max_length=1600)],
    channel: Annotated[str, Form()] = Channel.SMS,
) -> HTMLResponse:
    """Post the text to /twilio/sms exactly as Twilio would (signed), then show the transcript."""
    _require_enabled(settings)
    contact = db.scalars(
        select(Contact).where(Contact.debtor_id == debtor_id, Contact.channel == channel)
    ).first()
    if contact is None:
        raise BadInput("no_contact", f"debtor has no {channel} contact")
    db.close()  # release the connection: the webhook call below opens its own transaction
    fields = {
        "MessageSid": "SM" + secrets.token_hex(16),
        "AccountSid": settings.twilio_account_sid,
        "From": contact.address,
        "To": settings.twilio_whatsapp_from
        if channel == Channel.WHATSAPP
        else settings.twilio_sms_from,
        "Body": text,
        "NumMedia": "0",
    }
    url = settings.public_base_url.rstrip("/") + "/twilio/sms"
    signature = RequestValidator(settings.twilio_auth_token).compute_signature(url, fields)
    local = f"http://127.0.0.1:{request.url.port or 8000}/twilio/sms"
    response = httpx.post(local, data=fields, headers={"X-Twilio-Signature": signature}, timeout=30)
    if response.status_code != 200:
        raise Unavailable("webhook_failed", f"the SMS webhook answered {response.status_code}")
    ET.fromstring(response.text)  # the answer must be valid TwiML
    return transcript(debtor_id, request, db, settings)


# The e-mail's own HTML, shown alone: nothing it holds may run, load or submit anything.
MAIL_HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"


def _email_of(db: DbSession, debtor_id: int) -> tuple[Debtor, str | None]:
    debtor = db.get(Debtor, debtor_id)
    if debtor is None:
        raise NotFound("debtor_not_found", "no such debtor")
    address = next((c.address for c in debtor.contacts if c.channel == Channel.EMAIL), None)
    return debtor, address


@router.get("/{debtor_id}/mailbox", response_class=HTMLResponse)
def mailbox_page(
    debtor_id: RowId, request: Request, db: DbSession, settings: AppSettings, sent: str = ""
) -> HTMLResponse:
    """The e-mails the local SMTP mailbox received for this debtor, newest first."""
    _require_enabled(settings)
    debtor, address = _email_of(db, debtor_id)
    return templates.TemplateResponse(
        request,
        "mailbox.html",
        {
            "debtor": debtor,
            "address": address,
            "mails": mailbox.inbox(mailbox_dir(settings.var_dir), address) if address else [],
            "sent": sent == "1",
            "model_status": read_status(settings.var_dir),
        },
    )


@router.get("/{debtor_id}/mailbox/{name}/html")
def mail_html(debtor_id: RowId, name: str, db: DbSession, settings: AppSettings) -> Response:
    """The HTML part as the debtor's mail client would show it, under a CSP that runs nothing."""
    _require_enabled(settings)
    _, address = _email_of(db, debtor_id)
    mail = mailbox.read(mailbox_dir(settings.var_dir), name, address or "")
    if mail.html is None:
        raise NotFound("no_html_part", "this e-mail has no HTML part")
    return HTMLResponse(mail.html, headers={"Content-Security-Policy": MAIL_HTML_CSP})


@router.post("/{debtor_id}/mailbox/{name}/reply")
def mail_reply(
    debtor_id: RowId,
    name: str,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    text: Annotated[str, Form(min_length=1, max_length=5000)],
) -> Response:
    """Answer the e-mail as the debtor: raw RFC 5322, signed like the MTA pipe signs it
    (mail/signature.py), posted to this api's /mail/inbound. The assistant's answer comes back
    as a new e-mail in the mailbox."""
    _require_enabled(settings)
    debtor, address = _email_of(db, debtor_id)
    if not address:
        raise BadInput("no_contact", "debtor has no email contact")
    raw = mailbox.reply(
        mailbox.read(mailbox_dir(settings.var_dir), name, address),
        sender=address,
        text=text,
        language=debtor.language,
    )
    db.close()  # the inbound call below opens its own transaction
    signature = hmac.new(settings.mail_inbound_secret.encode(), raw, hashlib.sha256).hexdigest()
    response = httpx.post(
        f"http://127.0.0.1:{request.url.port or 8000}/mail/inbound",
        content=raw,
        headers={"Content-Type": "message/rfc822", "X-Relance-Signature": f"sha256={signature}"},
        timeout=60,
    )
    if response.status_code >= 300:
        raise Unavailable(
            "webhook_failed", f"the inbound e-mail route answered {response.status_code}"
        )
    return RedirectResponse(f"/simulator/{debtor_id}/mailbox?sent=1", status_code=303)


def _transcript(db: DbSession, debtor_id: int) -> list[Message]:
    conversation = db.scalars(
        select(Conversation).where(Conversation.debtor_id == debtor_id)
    ).first()
    if conversation is None:
        return []
    return list(
        db.scalars(
            select(Message).where(Message.conversation_id == conversation.id).order_by(Message.id)
        )
    )


def _channels(debtor: Debtor) -> list[str]:
    return sorted(
        {c.channel for c in debtor.contacts if c.channel in (Channel.SMS, Channel.WHATSAPP)}
    )
