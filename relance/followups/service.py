"""Daily follow-ups on promises to pay and payment plans.

`run_followups(session, today)` is safe to run more than once a day: every step records an audit
event for the promise or installment it handled and skips the ones already handled, and a card is
charged at most once per installment (the provider call also carries an idempotency key).

- the day before a promised date or an installment: a reminder with a payment link (or, when a
  card is on file, a notice that it will be charged); on the promised day, the link the bot
  promised to send;
- a promise still pending the day after its date (+ grace): broken, a follow-up task, a message
  with a link, and the invoices go back into the dunning sequence;
- an installment due with a saved card or an active SEPA mandate: charged off-session
  (`charges.py`: one attempt row and idempotency key per attempt); a decline, or a SEPA debit that
  fails days later, tells the debtor, sends a link and opens a follow-up task; a debit still
  `processing` is neither reminded nor missed;
- an installment still unpaid after the grace days: missed, a follow-up; two missed installments
  break the plan and its invoices go back into dunning;
- an installment an open dispute holds waits for a collector's decision: none of the above while
  the dispute is open (the debtor's own on an invoice the plan covers, or the `refunded` one a
  refund by the creditor opened); due again after the decision, it is missed only after the
  grace days counted from that decision.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from relance import audit
from relance.compliance.location import locate
from relance.compliance.profiles import profile_for
from relance.compliance.windows import window_block
from relance.db.base import utcnow
from relance.db.models import (
    AuditEvent,
    Conversation,
    Debtor,
    Installment,
    Invoice,
    PaymentPlan,
    Promise,
)
from relance.db.models.enums import (
    ConversationMode,
    InstallmentStatus,
    InvoiceStatus,
    PlanStatus,
    PromiseStatus,
)
from relance.followups import charges
from relance.followups.common import followup_task, installment_variables, link_for
from relance.ledger.notify import notify_debtor
from relance.ledger.ports import get_payments
from relance.plans import holds

log = logging.getLogger(__name__)
PROMISE_GRACE_DAYS = 1  # a bank transfer made on the promised day shows up the next day
MISSED_GRACE_DAYS = 3
MISSED_TO_BREAK_PLAN = 2
OPEN_INSTALLMENT = (InstallmentStatus.DUE, InstallmentStatus.PARTIAL)


@dataclass
class FollowupReport:
    promise_reminders: list[int] = field(default_factory=list)
    promise_due_links: list[int] = field(default_factory=list)
    broken_promises: list[int] = field(default_factory=list)
    installment_reminders: list[int] = field(default_factory=list)
    charged: list[int] = field(default_factory=list)
    charge_failures: list[int] = field(default_factory=list)
    debits_processing: list[int] = field(default_factory=list)
    provider_events: int = 0
    missed_installments: list[int] = field(default_factory=list)
    broken_plans: list[int] = field(default_factory=list)
    deferred_debtor_ids: list[int] = field(default_factory=list)


def run_followups(session: Session, today: date, *, now: datetime | None = None) -> FollowupReport:
    """One pass (the worker runs it hourly; each item is handled once). The caller commits.

    Items of a debtor outside their contact window (local hours, Sundays, public holidays) or
    whose conversation a collector owns are left for a later run: nothing is marked as done.
    """
    report = FollowupReport()
    gate = _ContactGate(session, now or utcnow())
    # The sandbox's simulated SEPA outcomes (Stripe pushes its own by webhook: nothing here).
    report.provider_events = get_payments().deliver_due_events(session, gate.now)
    if report.provider_events:
        log.info("%s provider events delivered (simulated debit outcomes)", report.provider_events)
    remind_promises(session, today, report, gate)
    send_promise_due_links(session, today, report, gate)
    break_promises(session, today, report, gate)
    charge_saved_methods(session, today, report, gate)
    remind_installments(session, today, report, gate)
    mark_missed_installments(session, today, report, gate)
    report.deferred_debtor_ids = sorted(gate.deferred)
    return report


class _ContactGate:
    """May we reach this debtor now? Same window rules as the dunning dispatcher."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.session = session
        self.now = now
        self.deferred: set[int] = set()

    def __call__(self, debtor: Debtor) -> bool:
        blocked = window_block(profile_for(debtor.jurisdiction), self.now, locate(debtor))
        conversation = self.session.scalars(
            select(Conversation).where(Conversation.debtor_id == debtor.id)
        ).first()
        if blocked or (conversation is not None and conversation.mode == ConversationMode.HUMAN):
            self.deferred.add(debtor.id)
            return False
        return True


def _done(session: Session, action: str, entity: Promise | Installment) -> bool:
    return (
        session.scalar(
            select(AuditEvent.id)
            .where(
                AuditEvent.action == action,
                AuditEvent.entity_type == entity.__tablename__,
                AuditEvent.entity_id == str(entity.id),
            )
            .limit(1)
        )
        is not None
    )


def _resume_dunning(session: Session, debtor_id: int, invoice_ids: list[int] | None) -> list[int]:
    """Lift the pause on the debtor's open invoices so the dunning planner picks them up again."""
    query = select(Invoice).where(
        Invoice.debtor_id == debtor_id, Invoice.status == InvoiceStatus.OPEN
    )
    if invoice_ids:
        query = query.where(Invoice.id.in_(invoice_ids))
    invoices = session.scalars(query).all()
    for invoice in invoices:
        invoice.dunning_paused_until = None
    return [invoice.id for invoice in invoices]


def remind_promises(
    session: Session, today: date, report: FollowupReport, gate: _ContactGate
) -> None:
    promises = session.scalars(
        select(Promise).where(
            Promise.status == PromiseStatus.PENDING,
            Promise.promised_date == today + timedelta(days=1),
        )
    ).all()
    for promise in promises:
        if _done(session, "promise.reminder_sent", promise):
            continue
        debtor = session.get(Debtor, promise.debtor_id)
        if debtor is None or not gate(debtor):
            continue
        url = link_for(
            session,
            debtor,
            "promise",
            amount_minor=promise.amount_minor,
            invoice_ids=promise.invoice_ids,
        )
        notify_debtor(
            session,
            debtor,
            "utter_promise_reminder",
            {
                "amount_minor": promise.amount_minor,
                "currency": promise.currency,
                "promise_date": promise.promised_date.isoformat(),
                "pay_url": url,
            },
            reason=f"promise:{promise.id}",
        )
        audit.record(
            session,
            actor="system",
            action="promise.reminder_sent",
            entity=promise,
            debtor_id=debtor.id,
        )
        report.promise_reminders.append(promise.id)


def send_promise_due_links(
    session: Session, today: date, report: FollowupReport, gate: _ContactGate
) -> None:
    """On the promised day, the link the bot said it would send (utter_promise_recorded)."""
    promises = session.scalars(
        select(Promise).where(
            Promise.status == PromiseStatus.PENDING, Promise.promised_date == today
        )
    ).all()
    for promise in promises:
        if _done(session, "promise.due_link_sent", promise):
            continue
        debtor = session.get(Debtor, promise.debtor_id)
        if debtor is None or not gate(debtor):
            continue
        url = link_for(
            session,
            debtor,
            "promise",
            amount_minor=promise.amount_minor,
            invoice_ids=promise.invoice_ids,
        )
        if url is None:
            continue
        notify_debtor(
            session,
            debtor,
            "utter_promise_due",
            {"amount_minor": promise.amount_minor, "currency": promise.currency, "pay_url": url},
            reason=f"promise:{promise.id}",
        )
        audit.record(
            session,
            actor="system",
            action="promise.due_link_sent",
            entity=promise,
            debtor_id=debtor.id,
        )
        report.promise_due_links.append(promise.id)


def break_promises(
    session: Session, today: date, report: FollowupReport, gate: _ContactGate
) -> None:
    promises = session.scalars(
        select(Promise).where(
            Promise.status == PromiseStatus.PENDING,
            Promise.promised_date < today - timedelta(days=PROMISE_GRACE_DAYS),
        )
    ).all()
    for promise in promises:
        debtor = session.get(Debtor, promise.debtor_id)
        if debtor is None or not gate(debtor):
            continue
        promise.status = PromiseStatus.BROKEN
        resumed = _resume_dunning(session, debtor.id, promise.invoice_ids)
        task = followup_task(session, debtor.id, "broken_promise", promise_id=promise.id)
        audit.record(
            session,
            actor="system",
            action="promise.broken",
            entity=promise,
            debtor_id=debtor.id,
            task_id=task.id,
            dunning_resumed_invoice_ids=resumed,
        )
        url = link_for(session, debtor, "balance")
        notify_debtor(
            session,
            debtor,
            "utter_promise_broken",
            {
                "amount_minor": promise.amount_minor,
                "currency": promise.currency,
                "promise_date": promise.promised_date.isoformat(),
                "pay_url": url,
            },
            reason=f"promise:{promise.id}",
        )
        report.broken_promises.append(promise.id)


def _open_installments(session: Session, *conditions: ColumnElement[bool]) -> list[Installment]:
    """Unpaid instalments of running plans, but for those an open dispute holds: the debtor
    contests what they ask (or the creditor gave that money back), and whether it is owed is a
    collector's decision, so neither reminder, charge nor "missed" until then
    (`relance/plans/holds.py`)."""
    return list(
        session.scalars(
            select(Installment)
            .join(PaymentPlan)
            .where(
                PaymentPlan.status == PlanStatus.ACTIVE,
                Installment.status.in_(OPEN_INSTALLMENT),
                holds.not_held(),
                *conditions,
            )
            .order_by(Installment.due_date, Installment.id)
        )
    )


def remind_installments(
    session: Session, today: date, report: FollowupReport, gate: _ContactGate
) -> None:
    for inst in _open_installments(session, Installment.due_date == today + timedelta(days=1)):
        if _done(session, "installment.reminder_sent", inst):
            continue
        debtor = session.get(Debtor, inst.plan.debtor_id)
        if debtor is None or not gate(debtor):
            continue
        saved = charges.active_method(session, inst.plan)
        if saved is not None:
            response, url = (
                charges.NOTICE_RESPONSE.get(saved.kind, "utter_installment_card_notice"),
                None,
            )
        else:
            response = "utter_installment_reminder"
            url = link_for(session, debtor, "installment", installment=inst)
        notify_debtor(
            session,
            debtor,
            response,
            installment_variables(inst, url),
            reason=f"installment:{inst.id}",
        )
        audit.record(
            session,
            actor="system",
            action="installment.reminder_sent",
            entity=inst,
            debtor_id=debtor.id,
            response=response,
        )
        report.installment_reminders.append(inst.id)


def charge_saved_methods(
    session: Session, today: date, report: FollowupReport, gate: _ContactGate
) -> None:
    """Installments due today or earlier, with a card or mandate on file and not yet tried with it."""
    for inst in _open_installments(session, Installment.due_date <= today):
        saved = charges.active_method(session, inst.plan)
        if saved is None or charges.already_charged(session, inst, saved):
            continue
        debtor = session.get(Debtor, inst.plan.debtor_id)
        if debtor is None or not gate(debtor):
            continue
        outcome = charges.charge(session, inst, saved, debtor)
        if outcome == "charged":
            report.charged.append(inst.id)
        elif outcome == "processing":
            report.debits_processing.append(inst.id)
        else:
            report.charge_failures.append(inst.id)


def mark_missed_installments(
    session: Session, today: date, report: FollowupReport, gate: _ContactGate
) -> None:
    overdue = today - timedelta(days=MISSED_GRACE_DAYS)
    for inst in _open_installments(session, Installment.due_date < overdue):
        plan = inst.plan
        if plan.status != PlanStatus.ACTIVE:
            continue  # broken earlier in this pass
        if charges.debit_processing(session, inst):
            continue  # a SEPA debit takes days: its outcome comes by webhook
        released = holds.released_on(session, inst)
        if released is not None and released >= overdue:
            continue  # held until a decision of these last days: not late yet
        debtor = session.get(Debtor, plan.debtor_id)
        if debtor is None or not gate(debtor):
            continue
        inst.status = InstallmentStatus.MISSED
        task = followup_task(
            session, debtor.id, "missed_installment", installment_id=inst.id, plan_id=plan.id
        )
        audit.record(
            session,
            actor="system",
            action="installment.missed",
            entity=inst,
            debtor_id=debtor.id,
            task_id=task.id,
        )
        report.missed_installments.append(inst.id)
        missed = sum(1 for i in plan.installments if i.status == InstallmentStatus.MISSED)
        if missed >= MISSED_TO_BREAK_PLAN:
            plan.status = PlanStatus.BROKEN
            resumed = _resume_dunning(session, debtor.id, plan.invoice_ids)
            audit.record(
                session,
                actor="system",
                action="plan.broken",
                entity=plan,
                debtor_id=debtor.id,
                missed=missed,
                dunning_resumed_invoice_ids=resumed,
            )
            report.broken_plans.append(plan.id)
            url = link_for(session, debtor, "balance")
            notify_debtor(
                session,
                debtor,
                "utter_plan_broken",
                {"currency": plan.currency, "pay_url": url},
                reason=f"plan:{plan.id}",
            )
            continue
        url = link_for(session, debtor, "installment", installment=inst)
        notify_debtor(
            session,
            debtor,
            "utter_installment_missed",
            installment_variables(inst, url),
            reason=f"installment:{inst.id}",
        )
