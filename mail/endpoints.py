"""E-mail routes: `POST /mail/inbound` (raw RFC 5322, HMAC-signed) and the unsubscribe link.

`/mail/unsubscribe/{token}`: GET shows a confirmation page with a button (a link scanner or a
prefetching client must not opt anyone out by opening the URL); POST — the button, or the mail
client's RFC 8058 one-click request with body `List-Unsubscribe=One-Click` — records the opt-out.
"""

from __future__ import annotations

from html import escape
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from mail import inbound, signature, unsubscribe
from mail.compose import word
from relance.nlg.templates_store import active_templates
from relance.web.deps import AppSettings, DbSession

router = APIRouter(tags=["mail"])
MAX_INBOUND_BYTES = inbound.MAX_MESSAGE_BYTES  # refused by the app before the body is read


async def raw_message(request: Request) -> bytes:
    """The exact bytes the MTA signed."""
    return await request.body()


@router.post("/mail/inbound")
def inbound_mail(
    raw: Annotated[bytes, Depends(raw_message)],
    db: DbSession,
    settings: AppSettings,
    x_relance_signature: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """One e-mail as an MTA pipe or a provider's inbound-parse hook delivers it (raw bytes).

    A plain (threaded) route, not a coroutine: the turn waits on Rasa, and Rasa asks this same
    api for the reply's wording (/nlg) meanwhile. Run on the event loop, the wait blocked that
    request, Rasa timed out and every e-mail got "the assistant is unavailable".
    """
    signature.verify(settings.mail_inbound_secret, raw, x_relance_signature)
    outcome = inbound.handle_raw(db, raw)
    return JSONResponse(
        {
            "status": outcome.status,
            "message_id": outcome.message_id,
            "reply_message_id": outcome.reply_message_id,
        }
    )


@router.get("/mail/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(token: str, db: DbSession, settings: AppSettings) -> HTMLResponse:
    contact = unsubscribe.contact_of(db, token, settings)
    language = contact.debtor.language
    label = word(
        active_templates(db),
        "utter_mail_unsubscribe_button",
        language,
        creditor_name=settings.creditor_name,
        creditor_phone=settings.creditor_phone,
    )
    return HTMLResponse(
        f'<!DOCTYPE html><html lang="{escape(language)}"><head><meta charset="utf-8">'
        f"<title>{escape(settings.creditor_name)}</title></head><body>"
        f'<form method="post"><button type="submit">{escape(label)}</button></form>'
        "</body></html>"
    )


@router.post("/mail/unsubscribe/{token}")
def unsubscribe_one_click(token: str, db: DbSession, settings: AppSettings) -> Response:
    """RFC 8058: a POST with `List-Unsubscribe=One-Click`, or the page's button."""
    contact = unsubscribe.unsubscribe(db, token, settings, source="list-unsubscribe")
    text = word(
        active_templates(db),
        "utter_mail_unsubscribed",
        contact.debtor.language,
        creditor_name=settings.creditor_name,
        creditor_phone=settings.creditor_phone,
    )
    return HTMLResponse(f"<!DOCTYPE html><html><body><p>{escape(text)}</p></body></html>")
