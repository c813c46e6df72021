"""Plan instalments a refund by the creditor reopened: held until a collector decides.

A refund takes back the money of a recorded payment (`relance/followups/refunds.py`); what that
payment settled is owed again, and an open `refunded` dispute holds it so the debtor is not
dunned automatically. An instalment of a payment plan is asked for by the follow-up pass
(`relance/followups/service.py`), not by the dunning planner, and that pass only looks at the
plan: the dispute on the invoice did not stop it. The instalment the refund reopened was
reminded the day before its date, charged again on the card or mandate kept for the plan, and
marked missed with a message to the debtor (two missed break the plan), all before a collector
had said whether the money was owed at all.

So the instalment names the dispute that holds it (`Installment.refund_hold_id`); while that
dispute is open, the follow-up pass leaves it alone (`not_held`). The collector's decision on
the dispute decides for the instalment too:

- rejected (still owed): the instalment is due again; its reminders and charges resume, a
  refunded charge no longer counts as a charge made (`followups.charges.already_charged`), and
  the grace before it is missed runs from the decision, not from its date, which may be long
  past (`released_on`);
- upheld (not owed): the invoice is cancelled, as for any refund hold
  (`relance/disputes/service.py`), and the plan stops asking for money nobody owes
  (`settle_upheld`): the instalments the refund reopened first, then the latest, give up what
  the plan's invoices no longer owe; a plan with nothing left to ask for is completed.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.orm import Session

from relance import audit
from relance.db.models import Dispute, Installment, Invoice, PaymentPlan
from relance.db.models.enums import DisputeStatus, InstallmentStatus, InvoiceStatus, PlanStatus

HELD = "installment.refund_held"
WAIVED = "installment.waived"
_OWING = (InvoiceStatus.OPEN, InvoiceStatus.DISPUTED)


def hold(
    session: Session,
    installment: Installment,
    dispute: Dispute,
    *,
    amount_minor: int,
    refund_ref: str,
    actor: str,
) -> None:
    """`dispute` holds the instalment whose `amount_minor` a refund reopened (once per refund
    part: a second partial refund of the same payment finds the same dispute)."""
    installment.refund_hold_id = dispute.id
    audit.record(
        session,
        actor=actor,
        action=HELD,
        entity=installment,
        debtor_id=dispute.debtor_id,
        dispute_id=dispute.id,
        plan_id=installment.plan_id,
        amount_minor=amount_minor,
        refund_ref=refund_ref,
    )


def not_held() -> ColumnElement[bool]:
    """SQL: the instalment is under no open refund hold (the follow-up pass's condition)."""
    return or_(
        Installment.refund_hold_id.is_(None),
        ~exists().where(
            Dispute.id == Installment.refund_hold_id, Dispute.status == DisputeStatus.OPEN
        ),
    )


def released_on(session: Session, installment: Installment) -> date | None:
    """The day a collector decided that the money a refund reopened is still owed (its hold
    rejected), else None: the instalment is not missed before the grace days after it."""
    if installment.refund_hold_id is None:
        return None
    dispute = session.get(Dispute, installment.refund_hold_id)
    if dispute is None or dispute.status != DisputeStatus.REJECTED or dispute.resolved_at is None:
        return None
    return dispute.resolved_at.date()


def held_by(session: Session, dispute: Dispute) -> list[Installment]:
    return list(
        session.scalars(
            select(Installment)
            .where(Installment.refund_hold_id == dispute.id)
            .order_by(Installment.plan_id, Installment.seq)
        )
    )


def settle_upheld(session: Session, dispute: Dispute, *, actor: str) -> list[int]:
    """The collector upheld a refund hold: what it reopened is not owed. Each running plan that
    the dispute holds an instalment of, or that covers its invoice (now cancelled), asks no more
    than its invoices still owe; a plan without invoices gives up what the held instalments
    still ask. The held instalments give up first, then the latest ones; a plan left with
    nothing to ask for is completed. Returns the ids of the plans changed."""
    held = held_by(session, dispute)
    plans: dict[int, PaymentPlan] = {inst.plan_id: inst.plan for inst in held}
    if dispute.invoice_id is not None:
        for plan in session.scalars(
            select(PaymentPlan).where(
                PaymentPlan.debtor_id == dispute.debtor_id,
                PaymentPlan.status == PlanStatus.ACTIVE,
            )
        ):
            if dispute.invoice_id in (plan.invoice_ids or []):
                plans.setdefault(plan.id, plan)
    changed = []
    for plan in plans.values():
        if plan.status != PlanStatus.ACTIVE:
            continue  # broken, cancelled: nothing of it runs any more
        first = [inst for inst in held if inst.plan_id == plan.id]
        unpaid = [inst for inst in plan.installments if inst.paid_minor < inst.amount_minor]
        asked = sum(inst.amount_minor - inst.paid_minor for inst in unpaid)
        if plan.invoice_ids:
            excess = asked - _owed(session, plan)
        else:
            excess = sum(inst.amount_minor - inst.paid_minor for inst in first)
        if excess <= 0:
            continue
        rest = sorted(
            (inst for inst in unpaid if inst not in first),
            key=lambda inst: (inst.due_date, inst.seq),
            reverse=True,
        )
        for inst in [*first, *rest]:
            if excess <= 0:
                break
            waived = min(excess, inst.amount_minor - inst.paid_minor)
            if waived > 0:
                _waive(session, inst, waived, dispute, actor)
                excess -= waived
        changed.append(plan.id)
        if all(inst.status == InstallmentStatus.PAID for inst in plan.installments):
            plan.status = PlanStatus.COMPLETED
            audit.record(
                session,
                actor=actor,
                action="plan.completed",
                entity=plan,
                debtor_id=plan.debtor_id,
                dispute_id=dispute.id,
            )
    return changed


def _owed(session: Session, plan: PaymentPlan) -> int:
    """What the plan's invoices still owe (open, or held by a dispute not decided yet)."""
    return sum(
        invoice.balance_minor
        for invoice in session.scalars(
            select(Invoice).where(Invoice.id.in_(plan.invoice_ids), Invoice.status.in_(_OWING))
        )
    )


def _waive(
    session: Session, inst: Installment, amount_minor: int, dispute: Dispute, actor: str
) -> None:
    """The instalment asks `amount_minor` less (the plan's total too): settled when what was
    paid of it covers the rest."""
    inst.amount_minor -= amount_minor
    inst.plan.total_minor -= amount_minor
    if inst.paid_minor >= inst.amount_minor:
        inst.status = InstallmentStatus.PAID
    audit.record(
        session,
        actor=actor,
        action=WAIVED,
        entity=inst,
        debtor_id=dispute.debtor_id,
        dispute_id=dispute.id,
        plan_id=inst.plan_id,
        amount_minor=amount_minor,
        installment_amount_minor=inst.amount_minor,
        status=inst.status,
    )
