"""Collector inbox and conversation view, with the casework actions."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from babel.numbers import get_currency_precision
from fastapi import APIRouter, Form, Query, Request, Response
from sqlalchemy.orm import Session

from console import casework
from console.queries import (
    InboxFilters,
    debtor_360,
    handoff_reasons,
    inbox,
    live_handoff,
    transcript,
)
from console.web import PREFIX, ConsoleRoute, is_htmx, redirect, render
from relance.auth.deps import CsrfChecked, CurrentUser
from relance.conversations import reply_retry
from relance.db.models import Conversation, Dispute, PaymentPlan
from relance.db.models.enums import Channel
from relance.errors import InvalidContent, NotFound, RelanceError
from relance.web.deps import DbSession
from relance.web.ids import RowId

router = APIRouter(route_class=ConsoleRoute)

NOTICES = {
    "taken_over": "You now own this conversation. The bot is paused.",
    "replied": "Reply sent.",
    "handed_back": "Conversation handed back to the bot.",
    "handed_back_deferred": "Handed back. The assistant is unreachable: it will answer the "
    "debtor's next message.",
    "plan_approved": "Payment plan approved.",
    "plan_rejected": "Payment plan rejected.",
    "dispute_resolved": "Dispute resolved in the debtor's favour: dunning stopped on the invoice.",
    "dispute_rejected": "Dispute rejected: dunning resumes.",
    "promise_recorded": "Promise recorded; reminders are paused until the promised date.",
    "link_sent": "Payment link sent.",
    "portal_link_sent": "Portal link sent.",
    "portal_links_revoked": "The debtor's portal links are revoked; open portal sessions end.",
}


def _filters(status: str, reason: str, channel: str, q: str) -> InboxFilters:
    return InboxFilters(status=status[:16], reason=reason[:40], channel=channel[:16], q=q[:100])


@router.get("/", name="inbox")
def inbox_page(
    request: Request,
    db: DbSession,
    user: CurrentUser,
    status: str = "",
    reason: str = "",
    channel: str = "",
    q: str = "",
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
) -> Response:
    filters = _filters(status, reason, channel, q)
    rows, pager = inbox(db, filters, user.id, page)
    context = {
        "rows": rows,
        "pager": pager,
        "filters": filters.as_dict(),
        "reasons": handoff_reasons(db),
        "channels": [c.value for c in Channel],
    }
    if is_htmx(request) and request.headers.get("HX-Target") == "inbox-rows":
        return render(request, "_inbox_rows.html", context)
    return render(request, "inbox.html", context)


def _conversation(db: DbSession, conversation_id: int) -> Conversation:
    conversation = db.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound("conversation_not_found", "This conversation does not exist (any more).")
    return conversation


@router.get("/conversations/{conversation_id}", name="conversation")
def conversation_page(
    request: Request,
    db: DbSession,
    user: CurrentUser,
    conversation_id: RowId,
    done: str = "",
    error: str = "",
) -> Response:
    conversation = _conversation(db, conversation_id)
    d360 = debtor_360(db, conversation.debtor) if conversation.debtor else None
    handoff = live_handoff(db, conversation.id)
    reply_to = None
    try:
        reply_to = casework.reply_contact(db, conversation)
    except RelanceError as exc:  # shown where the reply box would be
        reply_problem = exc.message
    else:
        reply_problem = ""
    return render(
        request,
        "conversation.html",
        {
            "conversation": conversation,
            "d360": d360,
            "handoff": handoff,
            **_transcript_context(db, conversation.id),
            "notice": NOTICES.get(done, ""),
            "error": error[:300],
            "owns": bool(
                handoff and handoff.assigned_to_id == user.id and conversation.mode == "human"
            ),
            "reply_to": reply_to,
            "reply_problem": reply_problem,
            "today": date.today(),
        },
    )


@router.get("/conversations/{conversation_id}/transcript", name="transcript")
def transcript_fragment(
    request: Request, db: DbSession, user: CurrentUser, conversation_id: RowId
) -> Response:
    conversation = _conversation(db, conversation_id)
    return render(
        request,
        "_transcript.html",
        {"conversation": conversation, **_transcript_context(db, conversation.id)},
    )


def _transcript_context(db: Session, conversation_id: int) -> dict[str, Any]:
    """The messages, and which failed replies the worker will still send (shown as retrying)."""
    messages = transcript(db, conversation_id)
    failed = [m.id for m in messages if m.status == "failed"]
    return {"messages": messages, "retrying": reply_retry.retrying(db, failed)}


def _back(request: Request, conversation_id: int, *, done: str = "", error: str = "") -> Response:
    """Back to the conversation page. The casework routes below catch a RelanceError and show
    its message there, above the form, instead of the console's error page (ConsoleRoute): the
    collector stays in the conversation and can correct and resend."""
    from urllib.parse import urlencode

    query = urlencode({"done": done} if done else {"error": error})
    return redirect(request, f"{PREFIX}/conversations/{conversation_id}?{query}")


@router.post("/conversations/{conversation_id}/take-over", dependencies=[CsrfChecked])
def take_over(
    request: Request, db: DbSession, user: CurrentUser, conversation_id: RowId
) -> Response:
    casework.take_over(db, _conversation(db, conversation_id), user)
    return _back(request, conversation_id, done="taken_over")


@router.post("/conversations/{conversation_id}/reply", dependencies=[CsrfChecked])
def reply(
    request: Request,
    db: DbSession,
    user: CurrentUser,
    conversation_id: RowId,
    text: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    conversation = _conversation(db, conversation_id)
    try:
        casework.reply(db, conversation, user, text)
    except RelanceError as exc:
        return _back(request, conversation_id, error=exc.message)
    return _back(request, conversation_id, done="replied")


@router.post("/conversations/{conversation_id}/hand-back", dependencies=[CsrfChecked])
def hand_back(
    request: Request, db: DbSession, user: CurrentUser, conversation_id: RowId
) -> Response:
    conversation = _conversation(db, conversation_id)
    casework.release_to_bot(db, conversation, user)
    db.commit()  # no transaction held across the bot's turn (its actions write too)
    resumed = casework.prompt_bot_after_hand_back(db, conversation)
    return _back(
        request, conversation_id, done="handed_back" if resumed else "handed_back_deferred"
    )


@router.post("/conversations/{conversation_id}/plans/{plan_id}", dependencies=[CsrfChecked])
def decide_plan(
    request: Request,
    db: DbSession,
    user: CurrentUser,
    conversation_id: RowId,
    plan_id: RowId,
    decision: Annotated[str, Form(pattern="^(approve|reject)$")],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    conversation = _conversation(db, conversation_id)
    plan = db.get(PaymentPlan, plan_id)
    if plan is None or plan.debtor_id != conversation.debtor_id:
        raise NotFound("plan_not_found", "This payment plan does not exist (any more).")
    try:
        casework.decide_plan(db, plan, user, approve=decision == "approve", note=note)
    except RelanceError as exc:
        return _back(request, conversation_id, error=exc.message)
    return _back(request, conversation_id, done=f"plan_{decision}d")


@router.post("/conversations/{conversation_id}/disputes/{dispute_id}", dependencies=[CsrfChecked])
def decide_dispute(
    request: Request,
    db: DbSession,
    user: CurrentUser,
    conversation_id: RowId,
    dispute_id: RowId,
    decision: Annotated[str, Form(pattern="^(resolve|reject)$")],
    note: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    conversation = _conversation(db, conversation_id)
    dispute = db.get(Dispute, dispute_id)
    if dispute is None or dispute.debtor_id != conversation.debtor_id:
        raise NotFound("dispute_not_found", "This dispute does not exist (any more).")
    try:
        casework.decide_dispute(db, dispute, user, upheld=decision == "resolve", note=note)
    except RelanceError as exc:
        return _back(request, conversation_id, error=exc.message)
    done = "dispute_resolved" if decision == "resolve" else "dispute_rejected"
    return _back(request, conversation_id, done=done)


def parse_amount(text: str, currency: str) -> int:
    """'120,50' or '120.50' → minor units for the currency (no floats);
    `InvalidContent("invalid_amount")` otherwise."""
    try:
        major = Decimal(text.strip().replace(" ", "").replace(",", "."))
    except InvalidOperation as exc:
        raise InvalidContent("invalid_amount", "The amount is not a number.") from exc
    minor = major * (Decimal(10) ** get_currency_precision(currency))
    if minor != minor.to_integral_value():
        raise InvalidContent("invalid_amount", "The amount has too many decimals.")
    return int(minor)


@router.post("/conversations/{conversation_id}/promises", dependencies=[CsrfChecked])
def record_promise(
    request: Request,
    db: DbSession,
    user: CurrentUser,
    conversation_id: RowId,
    amount: Annotated[str, Form(max_length=32)],
    promised_date: Annotated[date, Form()],
    currency: Annotated[str, Form(pattern="^[A-Z]{3}$")] = "EUR",
) -> Response:
    conversation = _conversation(db, conversation_id)
    try:
        casework.record_promise(
            db,
            conversation,
            user,
            amount_minor=parse_amount(amount, currency),
            currency=currency,
            promised_date=promised_date,
        )
    except RelanceError as exc:
        return _back(request, conversation_id, error=exc.message)
    return _back(request, conversation_id, done="promise_recorded")


@router.post("/conversations/{conversation_id}/payment-link", dependencies=[CsrfChecked])
def send_payment_link(
    request: Request,
    db: DbSession,
    user: CurrentUser,
    conversation_id: RowId,
    amount: Annotated[str, Form(max_length=32)] = "",
    currency: Annotated[str, Form(pattern="^[A-Z]{3}$")] = "EUR",
) -> Response:
    conversation = _conversation(db, conversation_id)
    try:
        amount_minor = parse_amount(amount, currency) if amount.strip() else None
        casework.send_payment_link(db, conversation, user, amount_minor=amount_minor)
    except RelanceError as exc:
        return _back(request, conversation_id, error=exc.message)
    return _back(request, conversation_id, done="link_sent")


@router.post("/conversations/{conversation_id}/portal-link", dependencies=[CsrfChecked])
def send_portal_link(
    request: Request, db: DbSession, user: CurrentUser, conversation_id: RowId
) -> Response:
    conversation = _conversation(db, conversation_id)
    try:
        casework.send_portal_link(db, conversation, user)
    except RelanceError as exc:
        return _back(request, conversation_id, error=exc.message)
    return _back(request, conversation_id, done="portal_link_sent")


@router.post("/conversations/{conversation_id}/portal-links/revoke", dependencies=[CsrfChecked])
def revoke_portal_links(
    request: Request, db: DbSession, user: CurrentUser, conversation_id: RowId
) -> Response:
    conversation = _conversation(db, conversation_id)
    try:
        casework.revoke_portal_links(db, conversation, user)
    except RelanceError as exc:
        return _back(request, conversation_id, error=exc.message)
    return _back(request, conversation_id, done="portal_links_revoked")
