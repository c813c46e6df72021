"""Debtor simulator (development and demo only): chat as a demo debtor in a browser.

Messages go through the real `POST /twilio/sms` path: the simulator signs a Twilio-shaped form with
the account's auth token and posts it to this very api, then shows the TwiML replies. Outbound
messages (reminders, payment thanks) are read back from the conversation's transcript.
"""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Annotated

import httpx
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from relance.db.models import Contact, Conversation, Debtor, Invoice, Message
from relance.db.models.enums import Channel, InvoiceStatus
from relance.errors import BadInput, NotFound, Unavailable
from relance.nlg.formatting import money
from relance.runtime.model_status import read_status
from relance.settings import Settings
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
