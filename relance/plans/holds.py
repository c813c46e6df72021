"""Plan instalments held by an open dispute, until a collector decides.

An open dispute pauses dunning on its invoice (`relance/disputes/service.py`). An instalment of
a payment plan is asked for by the follow-up pass (`relance/followups/service.py`), not by the
dunning planner, and that pass only looks at the plan: a dispute on the plan's invoice did not
stop it. The debtor who contested an invoice was reminded of its instalments, their card or
mandate kept for the plan was charged for the contested money, and an instalment could be
marked missed (two missed break the plan) before a collector had looked at the dispute; upheld,
the invoice was cancelled and the plan still asked for its share.

So an instalment names the dispute that holds it (`Installment.hold_id`), and while that
dispute is open the follow-up pass leaves it alone (`not_held`): no reminder, no charge, never
missed. Two disputes hold instalments:

- the debtor's own, whatever its reason (not received, wrong amount, defective...), raised with
  the assistant or on the portal: the instalments that would ask for the contested invoice are
  held as soon as it is registered (`hold_contested`);
- the `refunded` dispute a refund by the creditor opens (`relance/followups/refunds.py`): the
  instalment whose money the refund took back is held (`hold`).

A plan that starts running while a dispute over it is open (a request the collector approves
after the debtor contested one of its invoices, a plan agreed while the whole account is
contested, a completed plan active again after a reversal) takes that dispute's holds as it
starts (`hold_for_plan`), as if it had been running when the dispute came.

Which instalments a contested invoice holds. A plan over that invoice alone, or a dispute that
names no invoice (the debtor has several open ones and did not say which: the dispute pauses
dunning on the whole account, and the plan is that account's collection), holds every
instalment still to be asked. A plan over several invoices holds its *latest* instalments, as
many as it takes for the ones left due to ask no more than the plan's uncontested invoices
still owe (whole instalments: not a cent of contested money is asked meanwhile); the earlier
ones stay due on their dates. Not the whole plan: the debtor contests one invoice, not the
others they agreed to pay in instalments, and holding them all would stop the collection of
undisputed money for as long as the review lasts. Not each instalment in proportion: an
instalment is one amount with one date (one charge, one link, one "missed"), and splitting every
remaining one into an owed and a held part would need a second schedule. The latest rather than
the next ones, because what the debtor pays meanwhile settles the invoices they do not contest
(a plan's payment settles its uncontested invoices first, `relance/ledger/allocation.py`), and
because upheld, those latest instalments are exactly what the plan gives up: it ends earlier,
on the dates the debtor already knows. Instalments another open dispute holds are left to it.

One dispute holds an instalment at a time: the first. A refund of money an instalment the
debtor's dispute holds had been paid with leaves it to that dispute (and the debtor's dispute
leaves the instalment a refund holds to the refund's). When the holder is decided, what it held
passes to the other if that one is still open (`release`): the refund's dispute takes the
instalment it asked to hold, the debtor's open disputes take again their share of the plan. So
neither decision alone makes due money the other still questions.

The collector's decision on the dispute decides for the instalments too
(`relance/disputes/service.py`):

- rejected (owed): they are due again; their reminders and charges resume, a refunded charge no
  longer counts as a charge made (`followups.charges.already_charged`), and the grace before
  one is missed runs from the decision, not from its date, which may be long past
  (`released_on`);
- upheld (not owed): the invoice is cancelled, and the plan stops asking for money nobody owes
  (`settle_upheld`): the held instalments first, then the latest, give up what the plan's
  invoices no longer owe; what is left of a held instalment is due again, with the same grace;
  a plan with nothing left to ask for is completed.

Either way, what another dispute still open questions stays held, by it (`release`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.orm import Session

from relance import audit
from relance.db.models import AuditEvent, Dispute, Installment, Invoice, PaymentPlan
from relance.db.models.enums import DisputeStatus, InstallmentStatus, InvoiceStatus, PlanStatus

HELD = "installment.held"
WAIVED = "installment.waived"
_OWING = (InvoiceStatus.OPEN, InvoiceStatus.DISPUTED)
# What the follow-up pass still asks for: an instalment already missed is asked no more.
_TO_ASK = (InstallmentStatus.DUE, InstallmentStatus.PARTIAL)
# The reasons of the disputes Relance opens itself (`relance.disputes.service.SYSTEM_REASONS`,
# which imports this module): a refund's, which holds the instalment it reopened, no share.
_OWN_REASONS = ("refunded",)


def hold(
    session: Session,
    installment: Installment,
    dispute: Dispute,
    *,
    amount_minor: int,
    actor: str,
    **details: Any,
) -> bool:
    """`dispute` holds the instalment, for `amount_minor` of it (a refund's part, or what the
    instalment still asks); `details` go to the audit (a refund's id). Returns whether it holds
    it now.

    An instalment another open dispute holds stays that dispute's, as `hold_contested` leaves
    it: the hold is recorded all the same (`behind`, the dispute holding it), and the instalment
    passes to this dispute if that one is decided first (`release`). A refund on an instalment
    the debtor's dispute held used to take it over: the creditor's "still owed" on the refund
    then made due again an instalment of an invoice the debtor still contested."""
    holder = _open_holder(session, installment)
    behind = holder.id if holder is not None and holder.id != dispute.id else None
    if behind is None:
        installment.hold_id = dispute.id
    else:
        details["behind"] = behind
    audit.record(
        session,
        actor=actor,
        action=HELD,
        entity=installment,
        debtor_id=dispute.debtor_id,
        dispute_id=dispute.id,
        reason=dispute.reason,
        plan_id=installment.plan_id,
        amount_minor=amount_minor,
        **details,
    )
    return behind is None


def hold_contested(session: Session, dispute: Dispute, *, actor: str) -> list[Installment]:
    """The debtor opened `dispute`: in each running plan over its invoice (every running plan
    when it names none), hold the instalments that would ask for the contested money (see the
    module's docstring). Returns them, in the order of their plans and dates."""
    held: list[Installment] = []
    for plan in _covering(session, dispute):
        held.extend(_hold_contested_in(session, plan, dispute, actor=actor))
    return held


def release(session: Session, dispute: Dispute, *, actor: str) -> list[Installment]:
    """A collector decided `dispute` (after `settle_upheld` when upheld): what it held and is
    still unpaid is no longer held by it. Each such instalment passes to the oldest open dispute
    that asked to hold it meanwhile (`hold`'s `behind`: a refund of money the instalment had
    been paid with), and each running plan it held takes again what the debtor's open disputes
    over it contest (`hold_contested`'s share, computed without this dispute's hold). So the
    decision on one dispute never makes due what another still questions. Returns the
    instalments held again."""
    released = [inst for inst in held_by(session, dispute) if inst.paid_minor < inst.amount_minor]
    if not released:
        return []
    again: list[Installment] = []
    waiting = _waiting(session, released)
    for inst in released:
        for dispute_id in waiting.get(inst.id, []):
            other = session.get(Dispute, dispute_id)
            if other is None or other.status != DisputeStatus.OPEN:
                continue
            hold(
                session,
                inst,
                other,
                amount_minor=inst.amount_minor - inst.paid_minor,
                actor=actor,
                passed_from=dispute.id,
            )
            again.append(inst)
            break
    plans = {inst.plan_id: inst.plan for inst in released}
    for plan in plans.values():
        if plan.status != PlanStatus.ACTIVE:
            continue
        for other in _open_disputes_over(session, plan):
            # A refund's dispute holds the instalment whose money it took back (passed on
            # above), not a share of the invoice: as when it was opened.
            if other.reason not in _OWN_REASONS:
                again.extend(_hold_contested_in(session, plan, other, actor=actor))
    return again


def hold_for_plan(session: Session, plan: PaymentPlan, *, actor: str) -> list[Installment]:
    """`plan` starts running (agreed, approved by a collector, active again after a reversal)
    while disputes over it are open: each holds what it would have held had the plan been
    running when it came (`hold_contested`), the oldest dispute first. A dispute covers the
    plan when it names one of the plan's invoices, or none (the whole account). Returns the
    instalments held, in the order of their dates.

    Without it, a request the debtor made before contesting one of its invoices, approved
    afterwards, asked for the contested money on its dates: the dispute was registered when the
    plan was not running yet, and only running plans are held then."""
    if plan.status != PlanStatus.ACTIVE:
        return []
    held: list[Installment] = []
    for dispute in _open_disputes_over(session, plan):
        held.extend(_hold_contested_in(session, plan, dispute, actor=actor))
    return sorted(held, key=lambda inst: inst.seq)


def _open_disputes_over(session: Session, plan: PaymentPlan) -> list[Dispute]:
    """The debtor's open disputes over one of the plan's invoices or the whole account, oldest
    first."""
    disputes = session.scalars(
        select(Dispute)
        .where(Dispute.debtor_id == plan.debtor_id, Dispute.status == DisputeStatus.OPEN)
        .order_by(Dispute.id)
    )
    return [
        dispute
        for dispute in disputes
        if dispute.invoice_id is None or dispute.invoice_id in (plan.invoice_ids or [])
    ]


def _waiting(session: Session, installments: list[Installment]) -> dict[int, list[int]]:
    """For each instalment, the disputes that asked to hold it while another held it (`hold`'s
    `behind`), in the order they asked."""
    events = session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.action == HELD,
            AuditEvent.entity_type == Installment.__tablename__,
            AuditEvent.entity_id.in_([str(inst.id) for inst in installments]),
        )
        .order_by(AuditEvent.id)
    )
    waiting: dict[int, list[int]] = {}
    for event in events:
        details = event.details or {}
        if details.get("behind") is not None and event.entity_id:
            waiting.setdefault(int(event.entity_id), []).append(int(details["dispute_id"]))
    return waiting


def _hold_contested_in(
    session: Session, plan: PaymentPlan, dispute: Dispute, *, actor: str
) -> list[Installment]:
    held = _contested_instalments(session, plan, dispute)
    for inst in held:
        hold(session, inst, dispute, amount_minor=inst.amount_minor - inst.paid_minor, actor=actor)
    return held


@dataclass(frozen=True)
class Held:
    """What a dispute holds of the debtor's running plans, as the debtor is told it: their plan
    paused (`whole_plan`: nothing of it is asked any more while disputes are open), or some of
    its instalments, for `amount_minor`."""

    whole_plan: bool
    amount_minor: int
    currency: str


def what_is_held(session: Session, dispute: Dispute) -> Held | None:
    """What `dispute` holds of running plans now, else None (no plan, or nothing left to hold)."""
    held = [
        inst
        for inst in held_by(session, dispute)
        if inst.plan.status == PlanStatus.ACTIVE and inst.paid_minor < inst.amount_minor
    ]
    if not held:
        return None
    plans = {inst.plan_id: inst.plan for inst in held}
    asked = [
        inst
        for plan in plans.values()
        for inst in plan.installments
        if inst.status in _TO_ASK and inst.paid_minor < inst.amount_minor
    ]
    return Held(
        whole_plan=all(_held(session, inst) for inst in asked),
        amount_minor=sum(inst.amount_minor - inst.paid_minor for inst in held),
        currency=held[0].plan.currency,
    )


def not_held() -> ColumnElement[bool]:
    """SQL: the instalment is under no open dispute's hold (the follow-up pass's condition)."""
    return or_(
        Installment.hold_id.is_(None),
        ~exists().where(Dispute.id == Installment.hold_id, Dispute.status == DisputeStatus.OPEN),
    )


def released_on(session: Session, installment: Installment) -> date | None:
    """The day a collector decided the dispute that held the instalment (still owed, or what an
    upheld dispute left of it), else None: it is not missed before the grace days after it."""
    if installment.hold_id is None:
        return None
    dispute = session.get(Dispute, installment.hold_id)
    if dispute is None or dispute.status == DisputeStatus.OPEN or dispute.resolved_at is None:
        return None
    return dispute.resolved_at.date()


def held_by(session: Session, dispute: Dispute) -> list[Installment]:
    return list(
        session.scalars(
            select(Installment)
            .where(Installment.hold_id == dispute.id)
            .order_by(Installment.plan_id, Installment.seq)
        )
    )


def settle_upheld(session: Session, dispute: Dispute, *, actor: str) -> list[int]:
    """The collector upheld the dispute: what it held is not owed. Each running plan that the
    dispute holds an instalment of, or that covers its invoice (now cancelled), asks no more
    than its invoices still owe; a plan without invoices gives up what the held instalments
    still ask. The held instalments give up first, then the latest ones (those another open
    dispute holds last: their own decision is still to come); a plan left with nothing to ask
    for is completed. Returns the ids of the plans changed."""
    held = held_by(session, dispute)
    plans: dict[int, PaymentPlan] = {inst.plan_id: inst.plan for inst in held}
    for plan in _covering(session, dispute):
        plans.setdefault(plan.id, plan)
    changed = []
    for plan in plans.values():
        if plan.status != PlanStatus.ACTIVE:
            continue  # broken, cancelled: nothing of it runs any more
        unpaid = [inst for inst in plan.installments if inst.paid_minor < inst.amount_minor]
        first = [inst for inst in unpaid if inst.hold_id == dispute.id]
        asked = sum(inst.amount_minor - inst.paid_minor for inst in unpaid)
        if plan.invoice_ids:
            excess = asked - _owed(session, plan)
        else:
            excess = sum(inst.amount_minor - inst.paid_minor for inst in first)
        if excess <= 0:
            continue
        rest = [inst for inst in unpaid if inst not in first]
        others = [inst for inst in rest if _held(session, inst)]
        free = [inst for inst in rest if inst not in others]
        for inst in [*_latest_first(first), *_latest_first(free), *_latest_first(others)]:
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


def _covering(session: Session, dispute: Dispute) -> list[PaymentPlan]:
    """The debtor's running plans over the dispute's invoice; all of them when it names none
    (the dispute is on the whole account)."""
    plans = session.scalars(
        select(PaymentPlan)
        .where(
            PaymentPlan.debtor_id == dispute.debtor_id,
            PaymentPlan.status == PlanStatus.ACTIVE,
        )
        .order_by(PaymentPlan.id)
    )
    return [
        plan
        for plan in plans
        if dispute.invoice_id is None or dispute.invoice_id in (plan.invoice_ids or [])
    ]


def _contested_instalments(
    session: Session, plan: PaymentPlan, dispute: Dispute
) -> list[Installment]:
    """The plan's latest instalments still to be asked, as many as it takes for the others to
    ask no more than its uncontested invoices owe; all of them when the dispute names no
    invoice or the plan none (nothing to tell the contested share by)."""
    free = [
        inst
        for inst in plan.installments
        if inst.paid_minor < inst.amount_minor and not _held(session, inst)
    ]
    to_ask = [inst for inst in free if inst.status in _TO_ASK]
    if dispute.invoice_id is None or not plan.invoice_ids:
        return to_ask
    asked = sum(inst.amount_minor - inst.paid_minor for inst in free)
    uncontested = sum(
        invoice.balance_minor
        for invoice in session.scalars(
            select(Invoice).where(
                Invoice.id.in_(plan.invoice_ids), Invoice.status == InvoiceStatus.OPEN
            )
        )
    )
    taken = []
    for inst in _latest_first(to_ask):
        if asked <= uncontested:
            break
        taken.append(inst)
        asked -= inst.amount_minor - inst.paid_minor
    return sorted(taken, key=lambda inst: inst.seq)


def _held(session: Session, inst: Installment) -> bool:
    """Whether an open dispute holds the instalment."""
    return _open_holder(session, inst) is not None


def _open_holder(session: Session, inst: Installment) -> Dispute | None:
    """The open dispute that holds the instalment, if any."""
    if inst.hold_id is None:
        return None
    dispute = session.get(Dispute, inst.hold_id)
    return dispute if dispute is not None and dispute.status == DisputeStatus.OPEN else None


def _latest_first(installments: list[Installment]) -> list[Installment]:
    return sorted(installments, key=lambda inst: (inst.due_date, inst.seq), reverse=True)


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
