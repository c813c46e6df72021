"""Payment plans the assistant may agree on its own, within the policy's limits.

`evaluate` checks a requested plan (number of instalments, frequency, optional first payment)
against the limits for the debtor's segment and amount: maximum instalments and duration,
allowed frequencies, minimum first payment and minimum instalment. If the request is outside,
it proposes the closest plan that fits (a counter-offer); when nothing fits, a collector decides.
Nothing is written until `create_plan` or `request_approval`.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from sqlalchemy.orm import Session

from relance import audit
from relance.db.models import Debtor, Installment, PaymentPlan, Task
from relance.db.models.enums import PlanStatus, PromiseStatus
from relance.errors import Conflict, PolicyViolation
from relance.outbox.service import emit
from relance.plans import holds, repository
from relance.policy.service import PlanLimits
from relance.promises import repository as promises_repository

Status = Literal["within_limits", "counter_offer", "needs_approval"]
PERIOD_DAYS = {"weekly": 7, "biweekly": 14, "monthly": 30}
APPROVAL_TASK = "plan_approval"


@dataclass(frozen=True)
class Proposal:
    installments: int
    frequency: str
    amounts: tuple[int, ...]
    due_dates: tuple[date, ...]
    currency: str

    @property
    def total_minor(self) -> int:
        return sum(self.amounts)

    def variables(self) -> dict[str, object]:
        """What the wording needs (utter_plan_within_limits / utter_plan_counter_offer)."""
        return {
            "installments": self.installments,
            "frequency": self.frequency,
            "first_minor": self.amounts[0],
            "installment_minor": self.amounts[-1],
            "first_date": self.due_dates[0].isoformat(),
            "last_date": self.due_dates[-1].isoformat(),
            "currency": self.currency,
        }

    def as_dict(self) -> dict[str, object]:
        return {
            "installments": self.installments,
            "frequency": self.frequency,
            "amounts": list(self.amounts),
            "due_dates": [d.isoformat() for d in self.due_dates],
            "currency": self.currency,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Proposal:
        """From `as_dict()` as a slot carried it (JSON: any value type until converted here)."""
        return cls(
            installments=int(data["installments"]),
            frequency=str(data["frequency"]),
            amounts=tuple(int(a) for a in data["amounts"]),
            due_dates=tuple(date.fromisoformat(str(d)) for d in data["due_dates"]),
            currency=str(data["currency"]),
        )


@dataclass(frozen=True)
class Evaluation:
    status: Status
    requested: Proposal | None
    proposal: Proposal | None
    problems: list[str] = field(default_factory=list)


def due_dates(first: date, count: int, frequency: str) -> tuple[date, ...]:
    """Weekly/biweekly every 7/14 days; monthly on the same day of month (clamped)."""
    if frequency == "monthly":
        out = []
        for i in range(count):
            month_index = first.month - 1 + i
            year, month = first.year + month_index // 12, month_index % 12 + 1
            out.append(date(year, month, min(first.day, calendar.monthrange(year, month)[1])))
        return tuple(out)
    step = PERIOD_DAYS[frequency]
    return tuple(first + timedelta(days=step * i) for i in range(count))


def split(total_minor: int, count: int, first_minor: int | None = None) -> tuple[int, ...]:
    """Equal instalments (the rounding remainder on the first), or a set first then equal rest."""
    if count == 1:
        return (total_minor,)
    if first_minor is not None and 0 < first_minor < total_minor:
        rest = total_minor - first_minor
        base, remainder = divmod(rest, count - 1)
        tail = [base] * (count - 1)
        tail[0] += remainder
        return (first_minor, *tail)
    base, remainder = divmod(total_minor, count)
    return (base + remainder, *([base] * (count - 1)))


def problems_with(
    limits: PlanLimits, total_minor: int, count: int, frequency: str, amounts: tuple[int, ...]
) -> list[str]:
    problems = []
    if count > limits.max_installments:
        problems.append("too_many_installments")
    if frequency not in limits.allowed_frequencies:
        problems.append("frequency_not_allowed")
    if PERIOD_DAYS.get(frequency, 30) * (count - 1) > limits.max_duration_days:
        problems.append("too_long")
    if amounts[0] < limits.first_payment_floor(total_minor):
        problems.append("first_payment_too_small")
    if count > 1 and min(amounts[1:]) < limits.min_installment_minor:
        problems.append("installment_too_small")
    return problems


def evaluate(
    limits: PlanLimits,
    *,
    total_minor: int,
    currency: str,
    installments: int,
    frequency: str | None,
    first_minor: int | None = None,
    today: date,
) -> Evaluation:
    """Check the request; propose the closest allowed plan when it does not fit."""
    frequency = frequency if frequency in PERIOD_DAYS else "monthly"
    installments = max(installments, 1)
    amounts = split(total_minor, installments, first_minor)
    requested = Proposal(
        installments, frequency, amounts, due_dates(today, installments, frequency), currency
    )
    problems = problems_with(limits, total_minor, installments, frequency, amounts)
    if not problems:
        return Evaluation("within_limits", requested, requested)
    counter = closest_allowed(
        limits,
        total_minor=total_minor,
        currency=currency,
        installments=installments,
        frequency=frequency,
        today=today,
    )
    if counter is None:
        return Evaluation("needs_approval", requested, None, problems)
    return Evaluation("counter_offer", requested, counter, problems)


def closest_allowed(
    limits: PlanLimits,
    *,
    total_minor: int,
    currency: str,
    installments: int,
    frequency: str,
    today: date,
) -> Proposal | None:
    """The allowed plan nearest to the request: same frequency if allowed, as many instalments
    as the limits permit (never more than asked), first payment raised to the floor if needed."""
    frequencies = [frequency] if frequency in limits.allowed_frequencies else []
    frequencies += [
        f
        for f in ("monthly", "biweekly", "weekly")
        if f in limits.allowed_frequencies and f not in frequencies
    ]
    floor = limits.first_payment_floor(total_minor)
    for freq in frequencies:
        by_duration = limits.max_duration_days // PERIOD_DAYS[freq] + 1
        count = min(installments, limits.max_installments, by_duration)
        while count >= 2:
            even = split(total_minor, count)
            first = even[0] if even[0] >= floor else floor
            amounts = split(total_minor, count, first if first != even[0] else None)
            if not problems_with(limits, total_minor, count, freq, amounts):
                return Proposal(count, freq, amounts, due_dates(today, count, freq), currency)
            count -= 1
    return None


def create_plan(
    session: Session,
    debtor: Debtor,
    proposal: Proposal,
    *,
    status: str = PlanStatus.ACTIVE,
    approved_by: str | None = "policy",
    note: str | None = None,
    actor: str = "bot",
) -> PaymentPlan:
    """Write the plan and its schedule over the debtor's open invoices (dunning then skips them).

    Refused while another plan runs or waits for approval: it covers the same invoices, and two
    schedules would ask for the same money twice. Changing a plan is a collector's decision.
    """
    if repository.live_plan(session, debtor.id) is not None:
        raise PolicyViolation("plan_exists", "a payment plan is already in place")
    invoice_ids = [inv.id for inv in repository.open_invoices(session, debtor.id)]
    plan = PaymentPlan(
        debtor_id=debtor.id,
        total_minor=proposal.total_minor,
        currency=proposal.currency,
        installments_count=proposal.installments,
        frequency=proposal.frequency,
        status=status,
        invoice_ids=invoice_ids,
        approved_by=approved_by if status == PlanStatus.ACTIVE else None,
        note=note,
    )
    plan.installments = [
        Installment(seq=i + 1, due_date=due, amount_minor=amount)
        for i, (due, amount) in enumerate(zip(proposal.due_dates, proposal.amounts, strict=True))
    ]
    session.add(plan)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="plan.created",
        entity=plan,
        debtor_id=debtor.id,
        status=status,
        installments=proposal.installments,
        frequency=proposal.frequency,
        total_minor=proposal.total_minor,
    )
    if status == PlanStatus.ACTIVE:
        _agreed(session, plan, actor=actor)
    return plan


def _agreed(session: Session, plan: PaymentPlan, *, actor: str) -> None:
    """The plan runs from now (agreed within the limits, or approved by a collector)."""
    _supersede_promises(session, plan, actor=actor)
    # A dispute opened before it started (while a request waited for approval, or on the whole
    # account) holds what it contests of it, as it would of a plan running when it came.
    holds.hold_for_plan(session, plan, actor=actor)
    emit(
        session,
        "plan.agreed",
        debtor_id=plan.debtor_id,
        plan_id=plan.id,
        total_minor=plan.total_minor,
        currency=plan.currency,
        installments=[
            {"seq": i.seq, "due_date": i.due_date, "amount_minor": i.amount_minor}
            for i in plan.installments
        ],
    )


def _supersede_promises(session: Session, plan: PaymentPlan, *, actor: str) -> None:
    """A plan agreed replaces the debtor's pending promise, as a new promise does the old one:
    both are over the open invoices. A debtor who promised 600 € by the 15th and then agreed to
    pay 3 x 200 € used to keep the promise too: the day before, a reminder of the 600 €; on the
    15th, a link for the 600 €; a few days later, "you did not keep your promise" and a broken
    promise counted against them, all while paying the plan as agreed. A request still waiting
    for a collector changes nothing yet (the promise stands if the request is rejected)."""
    for promise in promises_repository.pending_promises(session, plan.debtor_id):
        promise.status = PromiseStatus.CANCELLED
        audit.record(
            session,
            actor=actor,
            action="promise.superseded",
            entity=promise,
            debtor_id=plan.debtor_id,
            plan_id=plan.id,
        )


def request_approval(
    session: Session, debtor: Debtor, requested: Proposal, *, reason: str, actor: str = "bot"
) -> PaymentPlan:
    """Keep the debtor's own request as a plan pending a collector's approval (dunning pauses)."""
    plan = create_plan(
        session,
        debtor,
        requested,
        status=PlanStatus.PENDING_APPROVAL,
        approved_by=None,
        note=reason,
        actor=actor,
    )
    session.add(
        Task(
            kind=APPROVAL_TASK, debtor_id=debtor.id, details={"plan_id": plan.id, "reason": reason}
        )
    )
    return plan


def decide_approval(
    session: Session, plan: PaymentPlan, *, approve: bool, actor: str, note: str = ""
) -> None:
    """A collector approves or rejects a plan above the policy limits (added by the console work).

    Approved: the plan is active and its schedule runs. Rejected: dunning resumes. The approval
    task is marked done either way. A plan already decided is `Conflict("plan_not_pending")`.
    """
    from sqlalchemy import select

    from relance.db.models.enums import TaskStatus

    if plan.status != PlanStatus.PENDING_APPROVAL:
        raise Conflict("plan_not_pending", "this plan is not waiting for approval")
    plan.status = PlanStatus.ACTIVE if approve else PlanStatus.REJECTED
    plan.approved_by = actor[:64] if approve else None
    if note:
        plan.note = note[:2000]
    for task in session.scalars(
        select(Task).where(
            Task.kind == APPROVAL_TASK,
            Task.debtor_id == plan.debtor_id,
            Task.status == TaskStatus.OPEN,
        )
    ):
        if (task.details or {}).get("plan_id") == plan.id:
            task.status = TaskStatus.DONE
    audit.record(
        session,
        actor=actor,
        action="plan.approved" if approve else "plan.rejected",
        entity=plan,
        debtor_id=plan.debtor_id,
        total_minor=plan.total_minor,
        currency=plan.currency,
        installments=plan.installments_count,
        note=note[:500],
    )
    if approve:
        _agreed(session, plan, actor=actor)
