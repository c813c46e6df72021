"""Portal routes, all under /portal: sign-in, identity check, the debtor's page, the actions.

Order of checks on every request with a token: the link (unknown 404; expired or revoked 410,
with nothing about the debtor), then the session (identity check passed with this very link and
its current epoch; otherwise the identity form), then, for a POST, the CSRF token (403). Only
then does a domain service run; its refusals (`relance.errors`) become a page in the debtor's
language with the matching 4xx status. Pages work without JavaScript; none is served.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import partial
from http import HTTPStatus
from math import ceil
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from portal import session as cookies
from portal.pages import has_key, language_of, render_page, translate
from relance.compliance.profiles import profile_for
from relance.contacts.service import PREFERABLE_CHANNELS
from relance.db import session as db_session
from relance.db.models import Debtor, Dispute
from relance.disputes.service import REASONS
from relance.errors import BadInput, RelanceError, TooManyRequests
from relance.nlg.formatting import long_date, money
from relance.plans.mandates import SEPA
from relance.plans.service import PERIOD_DAYS
from relance.portal import access as portal_access
from relance.portal import service
from relance.portal.models import PortalAccess
from relance.promises.service import latest_allowed
from relance.settings import Settings, get_settings
from relance.web.client_ip import client_ip
from relance.web.deps import AppSettings, DbSession
from relance.web.errors import headers_for, status_for
from relance.web.ids import RowId

STATIC = Path(__file__).parent / "static"
DISPUTE_PATH = re.compile(r"/portal/[^/]+/dispute")
# Every attachment at its limit, plus the form fields and multipart framing.
DISPUTE_MAX_BODY_BYTES = service.MAX_ATTACHMENTS * service.MAX_ATTACHMENT_BYTES + 64 * 1024
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": CSP,
}
DONE = (
    "payment",
    "plan",
    "approval",
    "promise",
    "dispute",
    "dispute_plan",
    "dispute_plan_part",
    "preferences",
    "mandate",
    "mandate_revoked",
    "card",
    "card_revoked",
)
STATE_STATUS = {
    portal_access.AccessState.UNKNOWN: 404,
    portal_access.AccessState.EXPIRED: 410,
    portal_access.AccessState.REVOKED: 410,
}


class PortalRoute(APIRoute):
    """A service's refusal or an unreadable form becomes a page in the debtor's language, with
    the headers its status calls for (`Retry-After` on a 429).

    The page is made inside the request's unit of work, so the request still commits: what the
    service wrote before refusing is kept. The address limit relies on it (its refusal is an
    audit event); a form whose refusal must undo its writes runs the service in `_attempt`'s
    savepoint.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            # Off the event loop: a refusal before the route ran reads the visitor's language
            # from the database (`_visitor`).
            except RelanceError as exc:
                response = await run_in_threadpool(
                    _error,
                    request,
                    exc.code,
                    status_for(exc),
                    detail=exc.message,
                    values=_values(exc),
                )
                response.headers.update(headers_for(exc))
                return response
            except RequestValidationError:
                return await run_in_threadpool(_error, request, "bad_form", 422)

        return guarded


router = APIRouter(prefix="/portal", tags=["portal"], include_in_schema=False)
router.route_class = PortalRoute


def _page(
    html: str,
    status: int = 200,
    data: cookies.PortalSession | None = None,
    settings: Settings | None = None,
) -> HTMLResponse:
    response = HTMLResponse(html, status_code=status, headers=HEADERS)
    if data is not None and settings is not None:
        response.set_cookie(
            cookies.COOKIE_NAME,
            cookies.dump(settings, data),
            max_age=cookies.MAX_AGE_SECONDS,
            path=cookies.COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=settings.public_base_url.startswith("https://"),
        )
    return response


def _redirect(
    url: str, data: cookies.PortalSession | None = None, settings: Settings | None = None
) -> Response:
    response = RedirectResponse(url, status_code=303, headers=HEADERS)
    if data is not None and settings is not None:
        response.set_cookie(
            cookies.COOKIE_NAME,
            cookies.dump(settings, data),
            max_age=cookies.MAX_AGE_SECONDS,
            path=cookies.COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=settings.public_base_url.startswith("https://"),
        )
    return response


def _values(error: RelanceError) -> dict[str, int]:
    """What an error's wording says besides the message: when to try again."""
    if isinstance(error, TooManyRequests):
        return {"minutes": max(1, ceil(error.retry_after_seconds / 60))}
    return {}


def _error(
    request: Request,
    code: str,
    status: int,
    *,
    detail: str = "",
    values: dict[str, int] | None = None,
) -> HTMLResponse:
    """The error page: `error_<code>` from the catalogue (with `values`), under `<code>_title`
    when the catalogue has one."""
    if hasattr(request.state, "portal_language"):
        language, back = request.state.portal_language, getattr(request.state, "portal_back", None)
    else:  # refused before the route ran (an unreadable form): found from the request
        language, back = _visitor(request)
    key = f"error_{code}" if has_key(f"error_{code}") else None
    html = render_page(
        "message.html",
        language,
        title=HTTPStatus(status).phrase if key is None else None,
        title_key=f"{code}_title" if has_key(f"{code}_title") else "error_title",
        body_key=key,
        body=detail if key is None else None,
        body_values=values or {},
        back=back,
    )
    return _page(html, status)


def _visitor(request: Request) -> tuple[str, str | None]:
    """For a request refused before its route ran: the language its page would be in (`_language`:
    the one chosen, else the debtor's when the path names a live link, else the browser's), and
    that link's page to go back to."""
    data = cookies.load(get_settings(), request.cookies.get(cookies.COOKIE_NAME))
    token = request.url.path.removeprefix("/portal").strip("/").split("/", 1)[0]
    debtor, base = None, None
    if token and token != "static":
        with db_session.get_sessionmaker()() as db:
            access = portal_access.find_access(db, token)
            if portal_access.access_state(access) == portal_access.AccessState.OPEN and access:
                debtor, base = db.get(Debtor, access.debtor_id), f"/portal/{token}"
    return _language(request, data, debtor), base


def dispute_too_large(scope: Scope, max_bytes: int) -> HTMLResponse:
    """The page for a dispute form whose files are over the body limit (the middleware refuses
    it before the route runs): in the visitor's language, back to the form, nothing stored."""
    language, base = _visitor(Request(scope))
    html = render_page(
        "message.html",
        language,
        title_key="error_title",
        body_key="error_request_too_large",
        back=f"{base}/dispute" if base else None,
    )
    return _page(html, 413)


def _language(request: Request, data: cookies.PortalSession | None, debtor: Debtor | None) -> str:
    return (
        language_of(request.query_params.get("lang"))
        or (data.language if data is not None else None)
        or (debtor.language if debtor is not None else None)
        or language_of(request.headers.get("accept-language"))
        or "fr"
    )


@dataclass
class Ctx:
    token: str
    access: PortalAccess
    debtor: Debtor
    data: cookies.PortalSession
    language: str
    base: str

    def today(self) -> date:
        return datetime.now(ZoneInfo(self.debtor.timezone or "Europe/Paris")).date()


def _open(token: str, request: Request, db: Session, settings: Settings) -> Ctx | Response:
    """The link's state, then the session: a Ctx for a verified visitor, else the page to show."""
    access = portal_access.find_access(db, token)
    state = portal_access.access_state(access)
    data = cookies.load(settings, request.cookies.get(cookies.COOKIE_NAME))
    if state != portal_access.AccessState.OPEN or access is None:
        language = _language(request, data, None)
        request.state.portal_language = language
        html = render_page("message.html", language, title_key=f"{state}_title", body_key=state)
        return _page(html, STATE_STATUS[state])
    debtor = db.get(Debtor, access.debtor_id)
    if debtor is None:
        return _page(
            render_page("message.html", "fr", title_key="unknown_title", body_key="unknown"), 404
        )
    language = _language(request, data, debtor)
    request.state.portal_language = language
    base = f"/portal/{token}"
    request.state.portal_back = base
    wanted = language_of(request.query_params.get("lang"))
    if (
        data is None
        or not data.verified
        or data.access_id != access.id
        or data.epoch != access.session_epoch
        or access.verified_at is None
    ):
        # Only a language the visitor chose (the switch link) is remembered, never a guess.
        fresh = cookies.fresh(access.id, access.session_epoch, wanted)
        if data is not None and data.access_id == access.id and not data.verified:
            fresh = cookies.PortalSession(
                access.id, access.session_epoch, False, data.csrf, wanted or data.language
            )
        # A POST without a verified session changes nothing: the identity form, as a 401.
        status = 401 if request.method == "POST" else 200
        return _identity_page(request, access, fresh, settings, language, base, status=status)
    if wanted and wanted != data.language:
        data = cookies.PortalSession(data.access_id, data.epoch, True, data.csrf, wanted)
    return Ctx(token, access, debtor, data, language, base)


def _identity_page(
    request: Request,
    access: PortalAccess,
    data: cookies.PortalSession,
    settings: Settings,
    language: str,
    base: str,
    *,
    error: str | None = None,
    status: int = 200,
    attempts_left: int | None = None,
) -> HTMLResponse:
    locked = portal_access.is_locked(access)
    html = render_page(
        "identity.html",
        language,
        base_path=base,
        csrf=data.csrf,
        method=settings.identity_check,
        error="identity_locked" if locked else error,
        locked=locked,
        attempts_left=None if locked else attempts_left,
    )
    return _page(html, 429 if locked else status, data, settings)


def _csrf_ok(ctx: Ctx, given: str) -> bool:
    return cookies.csrf_matches(ctx.data, given)


def _open_for_post(
    token: str, request: Request, db: Session, settings: Settings, csrf_token: str
) -> Ctx | Response:
    """`_open`, then the form's CSRF token: every state-changing route starts with both."""
    ctx = _open(token, request, db, settings)
    if isinstance(ctx, Ctx) and not _csrf_ok(ctx, csrf_token):
        return _forbidden(ctx)
    return ctx


def _forbidden(ctx: Ctx) -> HTMLResponse:
    html = render_page(
        "message.html", ctx.language, title_key="csrf_title", body_key="csrf", back=ctx.base
    )
    return _page(html, 403)


@dataclass(frozen=True)
class FormError:
    """A service's refusal shown on the form it came from, next to the field it is about, with
    what the debtor typed kept (on a phone, retyping a dispute's details is what makes people
    give up)."""

    key: str  # the catalogue's wording
    field: str | None  # the id of the input it is about, which gets the focus
    status: int
    values: dict[str, str]


# The field each refusal is about (`None`: the form as a whole).
ERROR_FIELDS = {
    "attachment_type": "files",
    "attachment_too_large": "files",
    "attachment_empty": "files",
    "too_many_attachments": "files",
    "bad_reason": "reason",
    "invoice_not_disputable": "invoice_id",
    "promise_date_past": "promised_date",
    "promise_date_too_late": "promised_date",
    "bad_amount": "amount",
    "bad_channel": "channel",
    "channel_without_contact": "channel",
    "bad_language": "language",
    "bad_hours": "contact_from",
    "hours_outside_legal_windows": "contact_from",
}


def _attempt(db: Session, act: Callable[[], object]) -> FormError | None:
    """Run a service call in a savepoint: a refusal undoes whatever it wrote and comes back as
    the error its form shows; anything else propagates."""
    try:
        with db.begin_nested():
            act()
    except RelanceError as exc:
        filename = exc.details.get("filename")
        if filename and has_key(f"refused_{exc.code}"):
            return FormError(
                f"refused_{exc.code}",
                ERROR_FIELDS.get(exc.code),
                status_for(exc),
                {"name": str(filename)},
            )
        if not has_key(f"error_{exc.code}"):
            raise  # no wording for it: the error page shows the service's own message
        return FormError(f"error_{exc.code}", ERROR_FIELDS.get(exc.code), status_for(exc), {})
    return None


# --- static --------------------------------------------------------------------------------


@router.get("/static/portal.css")
def stylesheet() -> FileResponse:
    return FileResponse(
        STATIC / "portal.css",
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600"},
    )


# --- sign-in without a link (letters, the website) -----------------------------------------


@router.get("", response_class=HTMLResponse)
def sign_in_page(request: Request, settings: AppSettings) -> HTMLResponse:
    data = cookies.load(settings, request.cookies.get(cookies.COOKIE_NAME))
    language = _language(request, data, None)
    request.state.portal_language = language
    if data is None or data.access_id != 0:
        data = cookies.fresh(language=language_of(request.query_params.get("lang")))
    return _page(render_page("sign_in.html", language, csrf=data.csrf), 200, data, settings)


@router.post("", response_class=HTMLResponse)
def sign_in(
    request: Request,
    db: DbSession,
    settings: AppSettings,
    customer_number: Annotated[str, Form(max_length=64)] = "",
    answer: Annotated[str, Form(max_length=64)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """The same refusal, status and timing work whether the customer number exists or not."""
    data = cookies.load(settings, request.cookies.get(cookies.COOKIE_NAME))
    language = _language(request, data, None)
    request.state.portal_language = language
    if not cookies.csrf_matches(data, csrf_token) or data is None:
        html = render_page(
            "message.html", language, title_key="csrf_title", body_key="csrf", back="/portal"
        )
        return _page(html, 403)
    client = client_ip(request, settings)
    found = portal_access.sign_in(db, customer_number, answer, language=language, client=client)
    if found is None:
        html = render_page("sign_in.html", language, csrf=data.csrf, error="sign_in_failed")
        return _page(html, 401, data, settings)
    access, url = found
    token = url.rsplit("/", 1)[-1]
    session = cookies.verified(data, access.id, access.session_epoch)
    return _redirect(f"/portal/{token}", session, settings)


# --- the identity check with a link --------------------------------------------------------


@router.post("/{token}/identity", response_class=HTMLResponse)
def identity(
    token: str,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    answer: Annotated[str, Form(max_length=64)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    access = portal_access.find_access(db, token)
    state = portal_access.access_state(access)
    data = cookies.load(settings, request.cookies.get(cookies.COOKIE_NAME))
    if state != portal_access.AccessState.OPEN or access is None:
        language = _language(request, data, None)
        html = render_page("message.html", language, title_key=f"{state}_title", body_key=state)
        return _page(html, STATE_STATUS[state])
    debtor = db.get(Debtor, access.debtor_id)
    language = _language(request, data, debtor)
    request.state.portal_language = language
    base = f"/portal/{token}"
    if data is None or data.access_id != access.id or not cookies.csrf_matches(data, csrf_token):
        html = render_page(
            "message.html", language, title_key="csrf_title", body_key="csrf", back=base
        )
        return _page(html, 403)
    client = client_ip(request, settings)
    outcome = portal_access.check_identity(db, access, answer, language=language, client=client)
    if outcome.verified:
        return _redirect(base, cookies.verified(data, access.id, access.session_epoch), settings)
    if outcome.locked:
        return _identity_page(request, access, data, settings, language, base)
    error = "identity_no_answer" if outcome.no_answer else "identity_mismatch"
    return _identity_page(
        request,
        access,
        data,
        settings,
        language,
        base,
        error=error,
        status=422 if outcome.no_answer else 401,
        attempts_left=outcome.attempts_left,
    )


# --- the debtor's page ---------------------------------------------------------------------


@router.get("/{token}", response_class=HTMLResponse)
def home(
    token: str,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    done: str = "",
    link: Annotated[int, Query(ge=0, lt=2**31)] = 0,
) -> Response:
    """`done`: what the debtor just did; `done=paid&link=<id>` is the end of a checkout started
    here (the payer page sends the debtor back, payment_links/endpoints.py)."""
    ctx = _open(token, request, db, settings)
    if not isinstance(ctx, Ctx):
        return ctx
    view = service.overview(db, ctx.debtor, ctx.today())
    notice, values = (f"done_{done}", {}) if done in DONE else (None, {})
    if done == "paid" and (paid := service.payment_back(db, ctx.debtor, link)) is not None:
        notice = "done_paid" if paid.recorded else "done_paid_confirming"
        values = {"amount": money(paid.amount_minor, paid.currency, ctx.language)}
    html = render_page(
        "overview.html",
        ctx.language,
        base_path=ctx.base,
        signed_in=True,
        csrf=ctx.data.csrf,
        view=view,
        notice=notice,
        notice_values=values,
    )
    return _page(html, 200, ctx.data, settings)


@router.post("/{token}/logout")
def logout(
    token: str,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    ctx = _open_for_post(token, request, db, settings, csrf_token)
    if not isinstance(ctx, Ctx):
        return ctx
    response = _redirect(ctx.base)
    response.delete_cookie(cookies.COOKIE_NAME, path=cookies.COOKIE_PATH)
    return response


def _from_portal(pay_url: str, ctx: Ctx) -> str:
    """A payment link's page, told it was opened from this portal page: its pages then offer
    "Back to my account", and a paid checkout ends back here (the payer pages accept no other
    address, payment_links/returns.py)."""
    return f"{pay_url}?{urlencode({'return': ctx.base})}"


# Invoices a debtor may tick in one payment (the page lists every open one; this only bounds
# the work a forged form can ask for).
MAX_SELECTED = 500


def _ids(values: list[str]) -> list[int]:
    try:
        return [int(v) for v in values]
    except ValueError as exc:
        raise BadInput("bad_form", "invalid invoice") from exc


@router.post("/{token}/pay")
def pay(
    token: str,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    # A ticked selection; "pay all" sends `scope=all` and the open invoices are found here.
    invoice_ids: Annotated[list[str], Form(max_length=MAX_SELECTED)] = [],  # noqa: B006 (FastAPI copies)
    scope: Annotated[str, Form(max_length=16)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    ctx = _open_for_post(token, request, db, settings, csrf_token)
    if not isinstance(ctx, Ctx):
        return ctx
    url = service.start_payment(db, ctx.debtor, _ids(invoice_ids), everything=scope == "all")
    return _redirect(_from_portal(url, ctx))


@router.post("/{token}/installments/{installment_id}/pay")
def pay_installment(
    token: str,
    installment_id: RowId,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    ctx = _open_for_post(token, request, db, settings, csrf_token)
    if not isinstance(ctx, Ctx):
        return ctx
    return _redirect(_from_portal(service.pay_installment(db, ctx.debtor, installment_id), ctx))


# --- plans ---------------------------------------------------------------------------------


@router.get("/{token}/plan", response_class=HTMLResponse)
def plan_page(token: str, request: Request, db: DbSession, settings: AppSettings) -> Response:
    ctx = _open(token, request, db, settings)
    if not isinstance(ctx, Ctx):
        return ctx
    options = service.plan_options(db, ctx.debtor, ctx.today())
    html = render_page(
        "plan.html",
        ctx.language,
        base_path=ctx.base,
        signed_in=True,
        csrf=ctx.data.csrf,
        options=options,
        frequencies=list(PERIOD_DAYS),
        evaluation=None,
        plan_in_place=service.has_live_plan(db, ctx.debtor),
    )
    return _page(html, 200, ctx.data, settings)


@router.post("/{token}/plan/evaluate", response_class=HTMLResponse)
def plan_evaluate(
    token: str,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    installments: Annotated[int, Form(ge=2, le=60)],
    frequency: Annotated[str, Form(max_length=16)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """What the assistant answers to the same request: the plan, a counter-offer, or approval."""
    ctx = _open_for_post(token, request, db, settings, csrf_token)
    if not isinstance(ctx, Ctx):
        return ctx
    evaluation = service.evaluate_plan(
        db, ctx.debtor, installments=installments, frequency=frequency, today=ctx.today()
    )
    html = render_page(
        "plan.html",
        ctx.language,
        base_path=ctx.base,
        signed_in=True,
        csrf=ctx.data.csrf,
        options=[],
        frequencies=list(PERIOD_DAYS),
        evaluation=evaluation,
        plan_in_place=service.has_live_plan(db, ctx.debtor),
    )
    return _page(html, 200, ctx.data, settings)


@router.post("/{token}/plan/{choice}")
def plan_post(
    token: str,
    choice: Literal["accept", "approval"],
    request: Request,
    db: DbSession,
    settings: AppSettings,
    installments: Annotated[int, Form(ge=2, le=60)],
    frequency: Annotated[str, Form(max_length=16)],
    # The plan's first payment as offered (a counter-offer may raise it to the policy's floor).
    first_amount: Annotated[int | None, Form(ge=1, lt=10**12)] = None,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Accept an offered plan (`accept`) or ask for another one (`approval`): the same form,
    only the service called differs."""
    ctx = _open_for_post(token, request, db, settings, csrf_token)
    if not isinstance(ctx, Ctx):
        return ctx
    act, done = (
        (service.accept_plan, "plan")
        if choice == "accept"
        else (service.ask_plan_approval, "approval")
    )
    act(
        db,
        ctx.debtor,
        installments=installments,
        frequency=frequency,
        first_minor=first_amount,
        today=ctx.today(),
    )
    return _redirect(f"{ctx.base}?done={done}", ctx.data, settings)


# --- SEPA direct debit ---------------------------------------------------------------------


def _mandate_text(ctx: Ctx, settings: Settings, db: Session, plan_id: int) -> str:
    """The mandate wording the debtor reads before giving it, naming the creditor and the
    provider in use; stored with the mandate. Refused (4xx page) when the plan is not offered
    direct debit."""
    provider = service.direct_debit_provider(db, ctx.debtor, plan_id)
    return translate(
        ctx.language,
        "sepa_mandate_text",
        creditor=settings.creditor_name,
        provider=translate(ctx.language, f"payment_provider_{provider}"),
    )


@router.get("/{token}/plans/{plan_id}/direct-debit", response_class=HTMLResponse)
def direct_debit_page(
    token: str, plan_id: RowId, request: Request, db: DbSession, settings: AppSettings
) -> Response:
    ctx = _open(token, request, db, settings)
    if not isinstance(ctx, Ctx):
        return ctx
    html = render_page(
        "direct_debit.html",
        ctx.language,
        base_path=ctx.base,
        signed_in=True,
        csrf=ctx.data.csrf,
        plan_id=plan_id,
        mandate_text=_mandate_text(ctx, settings, db, plan_id),
    )
    return _page(html, 200, ctx.data, settings)


@router.post("/{token}/plans/{plan_id}/direct-debit")
def direct_debit(
    token: str,
    plan_id: RowId,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """To the provider's mandate page (Stripe, or the sandbox's), back here once it is given."""
    ctx = _open_for_post(token, request, db, settings, csrf_token)
    if not isinstance(ctx, Ctx):
        return ctx
    home = f"{settings.public_base_url.rstrip('/')}{ctx.base}"
    url = service.start_direct_debit(
        db,
        ctx.debtor,
        plan_id,
        mandate_text=_mandate_text(ctx, settings, db, plan_id),
        locale=ctx.language,
        return_url=f"{home}?done=mandate",
        cancel_url=home,  # left without a mandate: no "thank you"
    )
    return _redirect(url)


# --- a card on file (plans that SEPA Direct Debit cannot collect) -------------------------


def _card_consent(ctx: Ctx, settings: Settings, db: Session, plan_id: int) -> str:
    """What the debtor agrees to by keeping the card: who charges it, through which provider,
    which amounts and when; stored with the card. Refused (4xx page) when a card is not
    offered for the plan."""
    plan, provider = service.card_offer(db, ctx.debtor, plan_id)
    t = partial(translate, ctx.language)
    dates = [inst.due_date for inst in plan.installments]
    summary = t(
        "plan_summary",
        count=plan.installments_count,
        frequency=t(f"freq_{plan.frequency}"),
        total=money(plan.total_minor, plan.currency, ctx.language),
    )
    return t(
        "card_consent_text",
        creditor=settings.creditor_name,
        provider=t(f"payment_provider_{provider}"),
        schedule=t(
            "card_schedule",
            summary=summary,
            first=long_date(min(dates), ctx.language),
            last=long_date(max(dates), ctx.language),
        ),
    )


@router.get("/{token}/plans/{plan_id}/card", response_class=HTMLResponse)
def card_page(
    token: str, plan_id: RowId, request: Request, db: DbSession, settings: AppSettings
) -> Response:
    ctx = _open(token, request, db, settings)
    if not isinstance(ctx, Ctx):
        return ctx
    html = render_page(
        "card.html",
        ctx.language,
        base_path=ctx.base,
        signed_in=True,
        csrf=ctx.data.csrf,
        plan_id=plan_id,
        consent_text=_card_consent(ctx, settings, db, plan_id),
    )
    return _page(html, 200, ctx.data, settings)


@router.post("/{token}/plans/{plan_id}/card")
def card(
    token: str,
    plan_id: RowId,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """To the provider's page where the card is given (Stripe, or the sandbox's), back here."""
    ctx = _open_for_post(token, request, db, settings, csrf_token)
    if not isinstance(ctx, Ctx):
        return ctx
    home = f"{settings.public_base_url.rstrip('/')}{ctx.base}"
    url = service.start_card(
        db,
        ctx.debtor,
        plan_id,
        consent_text=_card_consent(ctx, settings, db, plan_id),
        locale=ctx.language,
        return_url=f"{home}?done=card",
        cancel_url=home,  # left without a card: no "thank you"
    )
    return _redirect(url)


@router.post("/{token}/mandates/{mandate_id}/revoke")
def revoke_mandate(
    token: str,
    mandate_id: RowId,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    ctx = _open_for_post(token, request, db, settings, csrf_token)
    if not isinstance(ctx, Ctx):
        return ctx
    saved = service.revoke_mandate(db, ctx.debtor, mandate_id)
    done = "mandate_revoked" if saved.kind == SEPA else "card_revoked"
    return _redirect(f"{ctx.base}?done={done}", ctx.data, settings)


# --- promises ------------------------------------------------------------------------------


@router.get("/{token}/promise", response_class=HTMLResponse)
def promise_page(token: str, request: Request, db: DbSession, settings: AppSettings) -> Response:
    ctx = _open(token, request, db, settings)
    if not isinstance(ctx, Ctx):
        return ctx
    return _promise_form(ctx, db, settings)


def _promise_form(
    ctx: Ctx,
    db: Session,
    settings: Settings,
    *,
    error: FormError | None = None,
    kept: dict[str, str] | None = None,
) -> HTMLResponse:
    view = service.overview(db, ctx.debtor, ctx.today())
    html = render_page(
        "promise.html",
        ctx.language,
        base_path=ctx.base,
        signed_in=True,
        csrf=ctx.data.csrf,
        view=view,
        today=ctx.today().isoformat(),
        latest=latest_allowed(ctx.today()).isoformat(),
        latest_day=latest_allowed(ctx.today()),
        form_error=error,
        kept=kept or {},
    )
    return _page(html, error.status if error else 200, ctx.data, settings)


def _amount_minor(text: str) -> int | None:
    cleaned = text.strip().replace("\u00a0", "").replace(" ", "").replace("€", "")
    if not cleaned:
        return None
    try:
        value = float(cleaned.replace(",", "."))
    except ValueError as exc:
        raise BadInput("bad_amount", "invalid amount") from exc
    if not 0 < value < 10**9:
        raise BadInput("bad_amount", "invalid amount")
    return round(value * 100)


@router.post("/{token}/promise")
def promise(
    token: str,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    promised_date: Annotated[date, Form()],
    amount: Annotated[str, Form(max_length=20)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    ctx = _open_for_post(token, request, db, settings, csrf_token)
    if not isinstance(ctx, Ctx):
        return ctx
    today = ctx.today()
    refused = _attempt(
        db,
        lambda: service.promise(
            db,
            ctx.debtor,
            promised_date=promised_date,
            amount_minor=_amount_minor(amount),
            today=today,
        ),
    )
    if refused is not None:
        kept = {"promised_date": promised_date.isoformat(), "amount": amount}
        return _promise_form(ctx, db, settings, error=refused, kept=kept)
    return _redirect(f"{ctx.base}?done=promise", ctx.data, settings)


# --- disputes ------------------------------------------------------------------------------


@router.get("/{token}/dispute", response_class=HTMLResponse)
def dispute_page(
    token: str, request: Request, db: DbSession, settings: AppSettings, invoice: int = 0
) -> Response:
    ctx = _open(token, request, db, settings)
    if not isinstance(ctx, Ctx):
        return ctx
    return _dispute_form(ctx, db, settings, kept={"invoice_id": str(invoice)})


def _dispute_form(
    ctx: Ctx,
    db: Session,
    settings: Settings,
    *,
    kept: dict[str, str],
    error: FormError | None = None,
) -> HTMLResponse:
    view = service.overview(db, ctx.debtor, ctx.today())
    html = render_page(
        "dispute.html",
        ctx.language,
        base_path=ctx.base,
        signed_in=True,
        csrf=ctx.data.csrf,
        view=view,
        reasons=REASONS,
        max_files=service.MAX_ATTACHMENTS,
        form_error=error,
        kept=kept,
    )
    return _page(html, error.status if error else 200, ctx.data, settings)


@router.post("/{token}/dispute")
def dispute(
    token: str,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    invoice_id: Annotated[int, Form(ge=1, lt=2**31)],
    reason: Annotated[str, Form(max_length=32)],
    details: Annotated[str, Form(max_length=2000)] = "",
    files: Annotated[list[UploadFile], File()] = [],  # noqa: B006 (FastAPI copies)
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    ctx = _open_for_post(token, request, db, settings, csrf_token)
    if not isinstance(ctx, Ctx):
        return ctx
    uploads = []
    for upload in files:
        data = upload.file.read(service.MAX_ATTACHMENT_BYTES + 1)
        uploads.append(service.Upload(upload.filename or "", upload.content_type or "", data))
    opened: list[Dispute] = []
    refused = _attempt(
        db,
        lambda: opened.append(
            service.open_dispute(
                db,
                ctx.debtor,
                invoice_id=invoice_id,
                reason=reason,
                details=details,
                uploads=uploads,
            )
        ),
    )
    if refused is not None:
        kept = {"invoice_id": str(invoice_id), "reason": reason, "details": details}
        return _dispute_form(ctx, db, settings, kept=kept, error=refused)
    # The notice says what the dispute did to a running plan (paused, or its last instalments).
    done = service.dispute_done(db, opened[0])
    return _redirect(f"{ctx.base}?done={done}", ctx.data, settings)


# --- preferences ---------------------------------------------------------------------------


@router.get("/{token}/preferences", response_class=HTMLResponse)
def preferences_page(
    token: str, request: Request, db: DbSession, settings: AppSettings
) -> Response:
    ctx = _open(token, request, db, settings)
    if not isinstance(ctx, Ctx):
        return ctx
    return _preferences_form(ctx, settings)


def _preferences_form(
    ctx: Ctx,
    settings: Settings,
    *,
    error: FormError | None = None,
    kept: dict[str, str] | None = None,
) -> HTMLResponse:
    debtor = ctx.debtor
    channels = [c for c in PREFERABLE_CHANNELS if any(x.channel == c for x in debtor.contacts)]
    windows = ", ".join(f"{s:%H:%M}–{e:%H:%M}" for s, e in profile_for(debtor.jurisdiction).windows)
    stored = {
        "channel": debtor.preferred_channel or "",
        "language": debtor.language,
        "contact_from": f"{debtor.contact_from:%H:%M}" if debtor.contact_from else "",
        "contact_until": f"{debtor.contact_until:%H:%M}" if debtor.contact_until else "",
    }
    html = render_page(
        "preferences.html",
        ctx.language,
        base_path=ctx.base,
        signed_in=True,
        csrf=ctx.data.csrf,
        channels=channels,
        windows=windows,
        form_error=error,
        kept=kept if kept is not None else stored,
    )
    return _page(html, error.status if error else 200, ctx.data, settings)


def _time(text: str) -> time | None:
    if not text.strip():
        return None
    try:
        return time.fromisoformat(text.strip())
    except ValueError as exc:
        raise BadInput("bad_hours", "invalid time") from exc


@router.post("/{token}/preferences")
def preferences(
    token: str,
    request: Request,
    db: DbSession,
    settings: AppSettings,
    language: Annotated[str, Form(max_length=8)],
    channel: Annotated[str, Form(max_length=16)] = "",
    contact_from: Annotated[str, Form(max_length=8)] = "",
    contact_until: Annotated[str, Form(max_length=8)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    ctx = _open_for_post(token, request, db, settings, csrf_token)
    if not isinstance(ctx, Ctx):
        return ctx
    refused = _attempt(
        db,
        lambda: service.set_preferences(
            db,
            ctx.debtor,
            channel=channel or None,
            language=language,
            contact_from=_time(contact_from),
            contact_until=_time(contact_until),
        ),
    )
    if refused is not None:
        kept = {
            "channel": channel,
            "language": language,
            "contact_from": contact_from,
            "contact_until": contact_until,
        }
        return _preferences_form(ctx, settings, error=refused, kept=kept)
    data = cookies.PortalSession(ctx.data.access_id, ctx.data.epoch, True, ctx.data.csrf, language)
    return _redirect(f"{ctx.base}?done=preferences", data, settings)


# --- documents -----------------------------------------------------------------------------


def _open_for_file(token: str, request: Request, db: Session, settings: Settings) -> Ctx | Response:
    """`_open` for a download: before the identity check the form comes back as a 401, so a
    download never looks like a success (a saved "PDF" that is the identity page)."""
    ctx = _open(token, request, db, settings)
    if not isinstance(ctx, Ctx) and ctx.status_code == 200:
        ctx.status_code = 401
    return ctx


@router.get("/{token}/letters/{letter_id}.pdf")
def letter_pdf(
    token: str, letter_id: RowId, request: Request, db: DbSession, settings: AppSettings
) -> Response:
    ctx = _open_for_file(token, request, db, settings)
    if not isinstance(ctx, Ctx):
        return ctx
    path = service.letter_of(db, ctx.debtor, letter_id)
    return FileResponse(
        path, media_type="application/pdf", filename=f"letter-{letter_id}.pdf", headers=HEADERS
    )


@router.get("/{token}/invoices/{invoice_id}/document")
def invoice_document(
    token: str, invoice_id: RowId, request: Request, db: DbSession, settings: AppSettings
) -> Response:
    """The original of one of the debtor's invoices (e-invoice import), PDF or XML."""
    ctx = _open_for_file(token, request, db, settings)
    if not isinstance(ctx, Ctx):
        return ctx
    document = service.invoice_document_of(db, ctx.debtor, invoice_id)
    return FileResponse(
        document.path,
        media_type=document.media_type,
        filename=document.filename,
        headers=HEADERS,
    )


@router.get("/{token}/attachments/{attachment_id}")
def attachment(
    token: str, attachment_id: RowId, request: Request, db: DbSession, settings: AppSettings
) -> Response:
    ctx = _open_for_file(token, request, db, settings)
    if not isinstance(ctx, Ctx):
        return ctx
    row, path = service.attachment_of(db, ctx.debtor, attachment_id)
    return FileResponse(path, media_type=row.content_type, filename=row.filename, headers=HEADERS)
