"""Payer pages (`GET/POST /pay/{token}`), the sandbox checkout, and `POST /stripe/webhook`.

Pages speak the debtor's language and never leak the token onward (Referrer-Policy: no-referrer).
A link that is unknown, expired, paid or settled gets a plain explanation (404/410) and never
reaches the payment provider.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from payment_links import service, webhooks
from payment_links.cards import card_digits
from payment_links.iban import sepa_last4
from payment_links.pages import language_of, render_page, translate
from payment_links.providers import PaymentProvider, ProviderError, get_provider
from payment_links.providers.sandbox import (
    SEPA_OUTCOMES,
    sandbox_events,
    setup_succeeded_event,
    signature_header,
)
from payment_links.providers.sandbox_cards import (
    GENERIC_DECLINE,
    PAYING,
    TEST_CARDS,
    SandboxCard,
    card_for,
)
from payment_links.returns import own_page, portal_page
from payment_links.service import LinkState
from relance.db.models import Debtor, Installment, PaymentLink
from relance.errors import BadInput
from relance.followups.charges import failure_code, failure_reason
from relance.ledger.models import SavedPaymentMethod
from relance.nlg.formatting import money
from relance.settings import Settings, get_settings
from relance.web.deps import AppSettings, DbSession

router = APIRouter(tags=["payments"])

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Frame-Options": "DENY",
}
STATE_PAGES: dict[LinkState, tuple[int, str]] = {
    LinkState.UNKNOWN: (404, "unknown"),
    LinkState.EXPIRED: (410, "expired"),
    LinkState.PAID: (410, "paid"),
    LinkState.SETTLED: (410, "settled"),
}


def payment_provider(settings: AppSettings) -> PaymentProvider:
    """The configured provider; tests override this dependency."""
    return get_provider(settings)


Provider = Annotated[PaymentProvider, Depends(payment_provider)]


async def raw_body(request: Request) -> bytes:
    """The exact bytes Stripe signed (a parsed-and-reserialised body would not verify)."""
    return await request.body()


def _page(html: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


def _language(session: Session, link: PaymentLink | None, request: Request) -> str:
    debtor = session.get(Debtor, link.debtor_id) if link is not None else None
    if debtor is not None:
        return language_of(debtor.language)
    return language_of(request.headers.get("accept-language"))


def _state_page(
    language: str, state: LinkState, link: PaymentLink | None, back: str | None = None
) -> HTMLResponse:
    status_code, key = STATE_PAGES[state]
    values: dict[str, Any] = {}
    if link is not None:
        values["amount"] = money(link.amount_minor, link.currency, language)
    html = render_page(
        "message.html", language, title_key=f"{key}_title", body_key=key, values=values, back=back
    )
    return _page(html, status_code)


def _confirming(language: str, back: str | None = None) -> HTMLResponse:
    """Paid at the provider; the webhook will record it (and the debtor gets the thanks)."""
    return _page(
        render_page(
            "message.html",
            language,
            title_key="confirming_title",
            body_key="confirming",
            back=back,
        )
    )


def _received(language: str, link: PaymentLink, back: str | None = None) -> HTMLResponse:
    amount = money(link.amount_minor, link.currency, language)
    return _page(
        render_page(
            "message.html",
            language,
            title_key="received_title",
            body_key="received",
            values={"amount": amount},
            back=back,
        )
    )


def _paid_back_to_portal(
    request: Request, language: str, link: PaymentLink, state: LinkState, portal: str
) -> Response:
    """A checkout paid from the portal ends on the portal's page, which says whether the payment
    is recorded yet (`done=paid`; Stripe's webhook may come after the debtor).

    Redirected only when the browser says the whole way here was on this site (the sandbox's
    checkout): the portal's session cookie is SameSite=Strict, and a browser coming back from
    Stripe's site does not send it through a redirect, so the debtor would meet the identity
    check instead of their account. That debtor gets the thanks here, and "Back to my account"
    (a click on our page, which sends the cookie)."""
    target = f"{portal}?done=paid&link={link.id}"
    if request.headers.get("sec-fetch-site") == "same-origin":
        return RedirectResponse(target, status_code=303, headers=PAGE_HEADERS)
    if state == LinkState.PAID:
        return _received(language, link, target)
    return _confirming(language, target)


@router.get("/pay/{token}", response_class=HTMLResponse)
def pay_page(
    token: str,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    checkout: str | None = None,
    return_to: Annotated[str, Query(alias="return", max_length=500)] = "",
) -> Response:
    """`return`: the portal page the payment was started from (payment_links/returns.py), for
    "Back to my account" and the end of a paid checkout."""
    link = service.find_link(db, token)
    state = service.link_state(db, link)
    language = _language(db, link, request)
    back = portal_page(settings, return_to)
    paid_or_paying = state in (LinkState.PAID, LinkState.OPEN)
    if checkout == "success" and back is not None and paid_or_paying and link is not None:
        return _paid_back_to_portal(request, language, link, state, back)
    if checkout == "success" and state == LinkState.PAID and link is not None:
        return _received(language, link)
    if checkout == "success" and state == LinkState.OPEN:
        return _confirming(language)
    if state != LinkState.OPEN or link is None:
        return _state_page(language, state, link, back)
    debtor = db.get(Debtor, link.debtor_id)
    installment = db.get(Installment, link.installment_id) if link.installment_id else None
    return _page(
        render_page(
            "pay.html",
            language,
            link=link,
            debtor_name=debtor.display_name if debtor else "",
            invoices=service.link_invoices(db, link),
            installment_seq=installment.seq if installment else "",
            action=f"/pay/{token}",
            notice="cancelled" if checkout == "cancelled" else None,
            back=back,
        )
    )


@router.post("/pay/{token}")
def start_checkout(
    token: str,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    provider: Provider,
    return_url: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    link = service.find_link(db, token)
    language = _language(db, link, request)
    state = service.link_state(db, link)
    back = portal_page(settings, return_url)
    if state != LinkState.OPEN or link is None:
        return _state_page(language, state, link, back)
    references = ", ".join(inv.number for inv in service.link_invoices(db, link))
    description = translate(
        language,
        "checkout_description",
        creditor=settings.creditor_name,
        reference=references or translate(language, f"purpose_{link.purpose}", seq=""),
    )
    try:
        started = service.start_checkout(
            db,
            token,
            provider,
            description=description,
            locale=language,
            settings=settings,
            return_to=back,
        )
    except ProviderError:
        return _page(
            render_page(
                "message.html",
                language,
                title_key="provider_error_title",
                body_key="provider_error",
                back=back,
            ),
            503,
        )
    if started.state == LinkState.PROCESSING:
        return _confirming(language, back)
    if started.url is None:
        return _state_page(language, started.state, started.link, back)
    return RedirectResponse(started.url, status_code=303, headers=PAGE_HEADERS)


def _sandbox_link(db: Session, settings: Settings, session_id: str) -> PaymentLink | None:
    """Sandbox pages exist only while no Stripe key is set, and never in production."""
    if settings.uses_stripe or settings.environment == "production":
        return None
    query = db.query(PaymentLink).filter_by(provider="sandbox", provider_session_id=session_id)
    return query.first()


def _sandbox_returns_refused(language: str) -> HTMLResponse:
    """A sandbox checkout whose address lacks its success or cancel URL, or names another site:
    the sandbox could not end it as Stripe would (and never sends anyone elsewhere)."""
    html = render_page(
        "message.html", language, title_key="sandbox_returns_title", body_key="sandbox_returns"
    )
    return _page(html, 400)


# The success and cancel URLs the sandbox's checkout page carries (SandboxProvider._url).
ReturnUrl = Annotated[str, Query(max_length=2000)]
ReturnField = Annotated[str, Form(max_length=2000)]


# What the checkout page says of a declined test card: the reason a debtor is given for the
# decline (`relance/followups/charges.py` FAILURE_REASONS, so a lost, stolen or fraudulent card
# reads as a plain decline), each with its wording (`sandbox_declined_<reason>`).
def _declined_reason(card: SandboxCard) -> str:
    return failure_reason(failure_code(card.code, card.decline_code))


SANDBOX_DECLINES = frozenset(_declined_reason(card) for card in TEST_CARDS if card.declines)
CHECKOUT_OUTCOMES = ("success", "decline", "card")


def _sandbox_page(
    link: PaymentLink,
    state: LinkState,
    language: str,
    session_id: str,
    returns: tuple[str, str],
    declined: str = "",
    error: str | None = None,
    number: str = "",
) -> HTMLResponse:
    """The checkout page: the test cards to pick from (or a number to type), the shortcuts;
    after a decline, the reason the debtor is given; after a refused form, the error (400)."""
    success, cancel = returns
    return _page(
        render_page(
            "sandbox.html",
            language,
            link=link,
            paid=state == LinkState.PAID,
            declined=declined,
            action=f"/pay/sandbox/{session_id}/complete",
            success_url=success,
            cancel_url=cancel,
            cards=TEST_CARDS,
            error=error,
            number=number,
        ),
        400 if error else 200,
    )


@router.get("/pay/sandbox/{session_id}", response_class=HTMLResponse)
def sandbox_checkout(
    session_id: str,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    success: ReturnUrl = "",
    cancel: ReturnUrl = "",
    declined: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    """`declined`: the reason the last test card was declined for (set by the form's redirect;
    `1`, the page's older address, is a plain decline)."""
    link = _sandbox_link(db, settings, session_id)
    language = _language(db, link, request)
    if link is None:
        return _state_page(language, LinkState.UNKNOWN, None)
    if not (own_page(settings, success) and own_page(settings, cancel)):
        return _sandbox_returns_refused(language)
    reason = "card_declined" if declined == "1" else declined
    if reason and reason not in SANDBOX_DECLINES:
        return _sandbox_refused(language, "sandbox_bad_declined")
    state = service.link_state(db, link)
    if state not in (LinkState.OPEN, LinkState.PAID):
        return _state_page(language, state, link)
    return _sandbox_page(link, state, language, session_id, (success, cancel), declined=reason)


def _sandbox_refused(language: str, key: str) -> HTMLResponse:
    html = render_page("message.html", language, title_key="sandbox_refused_title", body_key=key)
    return _page(html, 400)


@router.post("/pay/sandbox/{session_id}/complete")
def sandbox_complete(
    session_id: str,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    provider: Provider,
    outcome: Annotated[str, Form(max_length=20)],
    success: ReturnField = "",
    cancel: ReturnField = "",
    card: Annotated[str, Form(max_length=40)] = "",
    number: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """The sandbox's form: a test card picked from the list (`card`) or typed (`number`), with
    `outcome=card`; or the shortcuts, `success` (4242 4242 4242 4242) and `decline` (Stripe's
    generic decline card). Stripe-shaped signed events go through the real webhook handler,
    then what Stripe Checkout does: paid, to the success URL; declined, the page again with the
    reason, to try another card. An unknown outcome or an invalid number is a 400 and nothing
    is sent."""
    link = _sandbox_link(db, settings, session_id)
    language = _language(db, link, request)
    if link is None:
        return _state_page(language, LinkState.UNKNOWN, None)
    if not (own_page(settings, success) and own_page(settings, cancel)):
        return _sandbox_returns_refused(language)
    if outcome not in CHECKOUT_OUTCOMES:
        return _sandbox_refused(language, "sandbox_bad_outcome")
    state = service.link_state(db, link)
    if state not in (LinkState.OPEN, LinkState.PAID):
        return _state_page(language, state, link)
    if state == LinkState.PAID:
        return RedirectResponse(success, status_code=303, headers=PAGE_HEADERS)
    test_card = PAYING if outcome == "success" else GENERIC_DECLINE
    if outcome == "card":
        typed = card or number
        try:
            test_card = card_for(card_digits(typed))
        except BadInput:
            return _sandbox_page(
                link,
                state,
                language,
                session_id,
                (success, cancel),
                error="sandbox_invalid_card",
                number=typed,
            )
    for event in sandbox_events(link, session_id, test_card):
        _deliver_signed(db, event, settings, provider)
    if not test_card.declines:
        return RedirectResponse(success, status_code=303, headers=PAGE_HEADERS)
    again = urlencode(
        {"success": success, "cancel": cancel, "declined": _declined_reason(test_card)}
    )
    return RedirectResponse(
        f"/pay/sandbox/{session_id}?{again}", status_code=303, headers=PAGE_HEADERS
    )


def _sandbox_mandate(db: Session, settings: Settings, setup_id: str) -> SavedPaymentMethod | None:
    """A pending sandbox mandate, only while no Stripe key is set and never in production."""
    if settings.uses_stripe or settings.environment == "production":
        return None
    query = db.query(SavedPaymentMethod).filter_by(
        provider="sandbox", setup_ref=setup_id, kind="sepa_debit", status="pending"
    )
    return query.first()


def _mandate_language(db: Session, saved: SavedPaymentMethod | None, request: Request) -> str:
    debtor = db.get(Debtor, saved.debtor_id) if saved is not None else None
    if debtor is not None:
        return language_of(debtor.language)
    return language_of(request.headers.get("accept-language"))


def _deliver_signed(
    db: Session, event: dict[str, Any], settings: Settings, provider: PaymentProvider
) -> None:
    """A sandbox event goes through the Stripe webhook's own path, signed with the webhook
    secret, so what the sandbox shows is what a real Stripe event would have done."""
    payload = json.dumps(event).encode()
    webhooks.process(
        db,
        payload,
        signature_header(payload, settings.stripe_webhook_secret),
        secret=settings.stripe_webhook_secret,
        provider=provider,
    )


def _safe_return(settings: Settings, url: str) -> str | None:
    """Back to the portal only: a return address elsewhere would make this an open redirect."""
    base = settings.public_base_url.rstrip("/")
    return url if url.startswith((f"{base}/portal/", "/portal/")) and "\\" not in url else None


def _mandate_page(
    saved: SavedPaymentMethod,
    language: str,
    setup_id: str,
    returns: tuple[str, str],
    error: str | None = None,
    status_code: int = 200,
    iban: str = "",
    outcome: str = "",
) -> HTMLResponse:
    """The form; after a refusal, what the debtor typed is filled back in (to be corrected, not
    retyped on a phone) and the error is tied to the field, which takes the focus. `returns`:
    the set-up's return and cancel URLs; the cancel one, a portal page, is "Back to my account"."""
    return_url, cancel_url = returns
    html = render_page(
        "sandbox_mandate.html",
        language,
        mandate_text=saved.mandate_text,
        outcomes=SEPA_OUTCOMES,
        action=f"/pay/sandbox/mandate/{setup_id}",
        return_url=return_url,
        back=portal_page(get_settings(), cancel_url),
        error=error,
        iban=iban,
        chosen=outcome if outcome in SEPA_OUTCOMES else SEPA_OUTCOMES[0],
    )
    return _page(html, status_code)


def _mandate_message(language: str, key: str, status_code: int) -> HTMLResponse:
    html = render_page("message.html", language, title_key=f"{key}_title", body_key=key)
    return _page(html, status_code)


@router.get("/pay/sandbox/mandate/{setup_id}", response_class=HTMLResponse)
def sandbox_mandate(
    setup_id: str,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    return_url: Annotated[str, Query(alias="return", max_length=500)] = "",
    cancel: Annotated[str, Query(max_length=500)] = "",
) -> HTMLResponse:
    """The sandbox's stand-in for Stripe's mandate page: the mandate text, an IBAN field."""
    saved = _sandbox_mandate(db, settings, setup_id)
    language = _mandate_language(db, saved, request)
    if saved is None:
        return _mandate_message(language, "mandate_unknown", 404)
    return _mandate_page(saved, language, setup_id, (return_url, cancel))


@router.post("/pay/sandbox/mandate/{setup_id}")
def sandbox_mandate_accept(
    setup_id: str,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    provider: Provider,
    iban: Annotated[str, Form(max_length=100)] = "",
    outcome: Annotated[str, Form(max_length=10)] = "",
    return_url: Annotated[str, Form(max_length=500)] = "",
    cancel_url: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """IBAN checked (schwifty) and dropped but for its last four; then the signed
    `setup_intent.succeeded` Stripe would send, through the real webhook handler. A refused form
    is a 400 and changes nothing."""
    saved = _sandbox_mandate(db, settings, setup_id)
    language = _mandate_language(db, saved, request)
    if saved is None:
        return _mandate_message(language, "mandate_unknown", 404)
    returns = (return_url, cancel_url)
    if outcome not in SEPA_OUTCOMES:
        return _mandate_page(
            saved, language, setup_id, returns, "mandate_bad_outcome", 400, iban=iban
        )
    try:
        last4 = sepa_last4(iban)
    except BadInput as exc:
        return _mandate_page(
            saved,
            language,
            setup_id,
            returns,
            f"mandate_{exc.code}",
            400,
            iban=iban,
            outcome=outcome,
        )
    _deliver_signed(
        db, setup_succeeded_event(setup_id, saved, outcome=outcome, last4=last4), settings, provider
    )
    target = _safe_return(settings, return_url)
    if target is None:
        return _mandate_message(language, "mandate_done", 200)
    return RedirectResponse(target, status_code=303, headers=PAGE_HEADERS)


def _sandbox_card(db: Session, settings: Settings, setup_id: str) -> SavedPaymentMethod | None:
    """A pending sandbox card set-up, only while no Stripe key is set and never in production."""
    if settings.uses_stripe or settings.environment == "production":
        return None
    query = db.query(SavedPaymentMethod).filter_by(
        provider="sandbox", setup_ref=setup_id, kind="card", status="pending"
    )
    return query.first()


def _card_page(
    saved: SavedPaymentMethod,
    language: str,
    setup_id: str,
    returns: tuple[str, str],
    error: str | None = None,
    status_code: int = 200,
    number: str = "",
) -> HTMLResponse:
    """As `_mandate_page`, for a card kept on file."""
    return_url, cancel_url = returns
    html = render_page(
        "sandbox_card.html",
        language,
        consent_text=saved.mandate_text,
        action=f"/pay/sandbox/card-setup/{setup_id}",
        return_url=return_url,
        back=portal_page(get_settings(), cancel_url),
        error=error,
        number=number,
    )
    return _page(html, status_code)


@router.get("/pay/sandbox/card-setup/{setup_id}", response_class=HTMLResponse)
def sandbox_card(
    setup_id: str,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    return_url: Annotated[str, Query(alias="return", max_length=500)] = "",
    cancel: Annotated[str, Query(max_length=500)] = "",
) -> HTMLResponse:
    """The sandbox's stand-in for Stripe's page where a card is kept for later charges."""
    saved = _sandbox_card(db, settings, setup_id)
    language = _mandate_language(db, saved, request)
    if saved is None:
        return _mandate_message(language, "card_unknown", 404)
    return _card_page(saved, language, setup_id, (return_url, cancel))


@router.post("/pay/sandbox/card-setup/{setup_id}")
def sandbox_card_accept(
    setup_id: str,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    provider: Provider,
    number: Annotated[str, Form(max_length=40)] = "",
    return_url: Annotated[str, Form(max_length=500)] = "",
    cancel_url: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """A test card number checked and dropped (but for what the payment method id keeps); then
    the signed `setup_intent.succeeded` Stripe would send, through the real webhook handler."""
    saved = _sandbox_card(db, settings, setup_id)
    language = _mandate_language(db, saved, request)
    if saved is None:
        return _mandate_message(language, "card_unknown", 404)
    try:
        digits = card_digits(number)
    except BadInput:
        return _card_page(
            saved,
            language,
            setup_id,
            (return_url, cancel_url),
            "card_invalid_number",
            400,
            number=number,
        )
    _deliver_signed(db, setup_succeeded_event(setup_id, saved, card=digits), settings, provider)
    target = _safe_return(settings, return_url)
    if target is None:
        return _mandate_message(language, "card_done", 200)
    return RedirectResponse(target, status_code=303, headers=PAGE_HEADERS)


@router.post("/stripe/webhook")
def stripe_webhook(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    provider: Provider,
    payload: Annotated[bytes, Depends(raw_body)],
) -> JSONResponse:
    """Stripe events (Stripe-Signature checked; a 400 problem document and nothing stored when
    it does not verify or the signed body is no event we can read)."""
    body = webhooks.process(
        db,
        payload,
        request.headers.get("stripe-signature"),
        secret=settings.stripe_webhook_secret,
        provider=provider,
    )
    return JSONResponse(body)
