"""Previews for admins: what a policy or a wording change means for one real (sample) debtor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import Debtor, Invoice
from relance.db.models.enums import InvoiceStatus
from relance.dunning.reminder_content import PRE_DUE, reminder_invoices
from relance.nlg.renderer import UnknownResponse, render
from relance.nlg.templates_store import Templates
from relance.policy.schema import Policy
from relance.policy.service import PlanLimits, limits_from_policy
from relance.settings import get_settings


@dataclass
class StagePreview:
    key: str
    kind: str
    channels: list[str]
    tone: str
    on: date | None
    past: bool
    text: str
    problem: str = ""
    send_hour: int | None = None  # the debtor's local hour, when the stage sets one


@dataclass
class PolicyPreview:
    debtor: Debtor
    invoice: Invoice | None
    balance_minor: int
    track: str
    stages: list[StagePreview]
    limits: PlanLimits | None
    limits_problem: str = ""


def sample_debtors(session: Session, limit: int = 50) -> list[Debtor]:
    return list(session.scalars(select(Debtor).order_by(Debtor.id).limit(limit)))


def pick_debtor(session: Session, debtor_id: int | None) -> Debtor | None:
    if debtor_id:
        found = session.get(Debtor, debtor_id)
        if found is not None:
            return found
    return session.scalars(select(Debtor).order_by(Debtor.id).limit(1)).first()


def _open_invoices(session: Session, debtor: Debtor) -> list[Invoice]:
    return list(
        session.scalars(
            select(Invoice)
            .where(Invoice.debtor_id == debtor.id, Invoice.status == InvoiceStatus.OPEN)
            .order_by(Invoice.due_date)
        )
    )


def sample_variables(session: Session, debtor: Debtor) -> dict[str, Any]:
    """The variables the bot usually passes, filled from the debtor's real data."""
    settings = get_settings()
    invoices = _open_invoices(session, debtor)
    first = invoices[0] if invoices else None
    balance = sum(i.balance_minor for i in invoices)
    currency = first.currency if first else "EUR"
    today = date.today()
    pay_url = f"{settings.public_base_url}/pay/preview-token"
    # A list, as the dispatcher passes it (templates join it): a string came out "F, -, 0, 1".
    refs = [i.number for i in invoices] or ["F-0001"]
    return {
        "name": debtor.name,
        "debtor_name": debtor.display_name,
        "company": debtor.company,
        "customer_number": debtor.customer_number,
        "segment": debtor.segment,
        "amount": balance,
        "amount_minor": balance,
        "amount_due": balance,
        "balance": balance,
        "balance_minor": balance,
        "remaining_minor": balance,
        "currency": currency,
        "invoice_number": first.number if first else "F-0001",
        "invoice_refs": refs,
        "invoices": [
            {
                "number": i.number,
                "amount_minor": i.balance_minor,
                "currency": i.currency,
                "due_date": i.due_date,
                "days_late": max((today - i.due_date).days, 0),
            }
            for i in invoices
        ],
        "invoice_count": len(invoices),
        "due_date": (first.due_date if first else today),
        "creditor_name": settings.creditor_name,
        "creditor_phone": settings.creditor_phone,
        "creditor_address": settings.creditor_address,
        "pay_url": pay_url,
        "payment_url": pay_url,
        "url": pay_url,
        "link": pay_url,
        "invoice_url": f"{settings.public_base_url}/invoices/preview",
        "expires_at": today + timedelta(days=settings.payment_link_ttl_days),
        "promise_date": today + timedelta(days=7),
        "promised_date": today + timedelta(days=7),
        "date": today + timedelta(days=7),
        "paid_date": today,
        "pause_until": today + timedelta(days=7),
        "formal_notice_date": today + timedelta(days=10),
        "deadline": today + timedelta(days=8),
        "max_date": today + timedelta(days=90),
        "first_date": today + timedelta(days=3),
        "installments": 3,
        "max_installments": 3,
        "number": 1,
        "total": 3,
        "seq": 1,
        "count": 3,
        "first_minor": balance // 3,
        "installment_minor": balance // 3,
        "frequency": "monthly",
        "dispute_reference": "D-PREVIEW",
        "reference": "D-PREVIEW",
        "interest_minor": 0,
        "fees_minor": 0,
        "credit_minor": 0,
        "attempts_left": 2,
        "callback_at": today + timedelta(days=1),
        "business_hours": "9h-18h",
        "language": debtor.language,
    }


def _stage_debt(
    invoices: list[Invoice], first: Invoice | None, bot_stage: str, on: date | None
) -> dict[str, Any]:
    """What the stage's reminder would claim on its date, as the dispatcher renders it
    (relance/dunning/reminder_content.py): the first invoice before its due date, then the
    invoices due by that date, never the whole balance (an invoice not yet due is no overdue
    amount; the preview showed the sum of every open invoice in every stage)."""
    if first is None or on is None:
        return {}
    payable = [i for i in invoices if i.balance_minor > 0]
    # A pre-due reminder names the invoice coming due; a dunning stage every one due by then.
    refs = [first.number] if bot_stage == PRE_DUE else None
    about = reminder_invoices(payable, refs, stage=bot_stage, today=on)
    if not about:
        return {}
    amount = sum(i.balance_minor for i in about)
    return {
        "amount_minor": amount,
        "amount": amount,
        "amount_due": amount,
        "currency": about[0].currency,
        "invoice_refs": [i.number for i in about],
        "due_date": about[0].due_date,
    }


def render_for(
    templates: Templates,
    name: str,
    debtor: Debtor,
    variables: dict[str, Any],
    *,
    language: str | None = None,
    tone: str | None = None,
    channel: str | None = None,
) -> tuple[str, str]:
    """(text, problem): a missing or broken template is reported, never raised."""
    try:
        text = render(
            templates,
            name,
            language=language or debtor.language,
            variables=variables,
            tone=tone,
            channel=channel,
        )
    except UnknownResponse:
        return "", f"no template named {name}"
    except Exception as exc:
        return "", f"{name}: {exc}"
    return text, ""


def policy_preview(
    session: Session, policy: Policy, templates: Templates, debtor: Debtor
) -> PolicyPreview:
    invoices = _open_invoices(session, debtor)
    invoice = invoices[0] if invoices else None
    balance = sum(i.balance_minor for i in invoices)
    track = policy.track_for(debtor.segment, debtor.risk_class)
    variables = sample_variables(session, debtor)
    today = date.today()
    stages = []
    for stage in track.stages:
        on = invoice.due_date + timedelta(days=stage.offset_days) if invoice else None
        text, problem = render_for(
            templates,
            stage.template,
            debtor,
            variables | _stage_debt(invoices, invoice, stage.bot_stage, on),
            tone=stage.tone,
            channel=stage.channels[0] if stage.channels else None,
        )
        stages.append(
            StagePreview(
                key=stage.key,
                kind=stage.kind,
                channels=list(stage.channels),
                tone=stage.tone,
                on=on,
                past=bool(on and on < today),
                text=text,
                problem=problem,
                send_hour=stage.send_hour,
            )
        )
    limits, limits_problem = None, ""
    try:
        limits = limits_from_policy(policy, debtor.segment, max(balance, 1))
    except LookupError as exc:
        limits_problem = str(exc)
    return PolicyPreview(debtor, invoice, balance, track.name, stages, limits, limits_problem)
