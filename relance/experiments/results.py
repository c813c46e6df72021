"""What each arm achieved: outcomes attributed from the ledger, promises and conversations.

A debtor counts once per experiment, from their first exposure `t0`. Their outcome is what
happened in the window [t0, t0 + window_days]: a payment received (any, or every invoice of that
first contact paid in full), a promise made, a message from them. Only debtors whose window has
closed count in `n` and the rate (a debtor exposed yesterday has not had the time to pay:
counting them would bias every arm towards the one most recently given traffic); `exposed`
counts everyone. Opt-outs and complaints (a handoff for a legal matter, e.g. harassment) within
the window feed the guard rails.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import (
    Contact,
    Conversation,
    Handoff,
    Invoice,
    Message,
    Payment,
    Promise,
)
from relance.db.models.enums import Direction
from relance.experiments.models import Experiment, ExperimentExposure
from relance.experiments.stats import Interval, lift_interval, prob_best, wilson
from relance.ledger.service import kept_minor, standing

COMPLAINT_HANDOFF_REASONS = ("legal",)
CHUNK = 500


@dataclass
class Exposed:
    arm: int
    t0: datetime
    invoice_ids: list[int]
    success: bool = False
    amounts: dict[str, int] = field(default_factory=dict)
    opted_out: bool = False
    complained: bool = False


@dataclass
class ArmResult:
    index: int
    name: str
    variant_index: int | None  # a wording arm's variant
    hour: int | None = None  # a send-hour arm's local hour
    channels: list[str] | None = None  # a channel-order arm's order
    offset_days: int | None = None  # a stage-offset arm's day from the due date
    exposed: int = 0
    n: int = 0
    successes: int = 0
    amount_minor: dict[str, int] = field(default_factory=dict)
    opt_outs: int = 0
    complaints: int = 0
    rate_interval: Interval = field(default_factory=lambda: Interval(0.0, 1.0))
    lift: float | None = None
    lift_interval: Interval | None = None
    relative_lift: float | None = None
    p_best: float = 0.0
    share: float = 0.0
    stopped_reason: str | None = None

    @property
    def rate(self) -> float:
        return self.successes / self.n if self.n else 0.0

    @property
    def opt_out_rate(self) -> float:
        return self.opt_outs / self.exposed if self.exposed else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.exposed if self.exposed else 0.0


@dataclass
class Results:
    experiment_id: int
    outcome: str
    window_days: int
    arms: list[ArmResult]
    # (day of first exposure, cumulative rate per arm, None before an arm's first matured debtor)
    series: list[tuple[date, list[float | None]]]

    @property
    def leader(self) -> int | None:
        ranked = [a for a in self.arms if a.n]
        return max(ranked, key=lambda a: a.p_best).index if ranked else None


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


def first_exposures(session: Session, experiment_id: int) -> dict[int, Exposed]:
    exposed: dict[int, Exposed] = {}
    rows = session.execute(
        select(
            ExperimentExposure.debtor_id,
            ExperimentExposure.arm_index,
            ExperimentExposure.exposed_at,
            ExperimentExposure.invoice_ids,
        )
        .where(ExperimentExposure.experiment_id == experiment_id)
        .order_by(ExperimentExposure.exposed_at, ExperimentExposure.id)
    )
    for debtor_id, arm, at, invoice_ids in rows:
        if debtor_id not in exposed:
            exposed[debtor_id] = Exposed(arm, at, list(invoice_ids or []))
    return exposed


def _in_window(exposed: Exposed, at: datetime | None, window: timedelta) -> bool:
    return at is not None and exposed.t0 <= at <= exposed.t0 + window


def attribute(
    session: Session, exposed: dict[int, Exposed], *, outcome: str, window_days: int
) -> None:
    """Fill each debtor's outcome, amount, opt-out and complaint from the database."""
    window = timedelta(days=window_days)
    ids = list(exposed)
    for chunk in _chunks(ids):
        for debtor_id, at, amount, currency in session.execute(
            select(Payment.debtor_id, Payment.received_at, kept_minor(), Payment.currency).where(
                Payment.debtor_id.in_(chunk), standing()
            )
        ):
            e = exposed[debtor_id]
            if _in_window(e, at, window):
                e.amounts[currency] = e.amounts.get(currency, 0) + amount
                if outcome == "any_payment":
                    e.success = True
        if outcome == "promise":
            for promiser, promised_at in session.execute(
                select(Promise.debtor_id, Promise.created_at).where(Promise.debtor_id.in_(chunk))
            ):
                if _in_window(exposed[promiser], promised_at, window):
                    exposed[promiser].success = True
        if outcome == "reply":
            for replier, replied_at in session.execute(
                select(Conversation.debtor_id, Message.created_at)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Conversation.debtor_id.in_(chunk), Message.direction == Direction.INBOUND)
            ):
                if replier is not None and _in_window(exposed[replier], replied_at, window):
                    exposed[replier].success = True
        for opted, opted_at in session.execute(
            select(Contact.debtor_id, Contact.opted_out_at).where(
                Contact.debtor_id.in_(chunk), Contact.opted_out_at.is_not(None)
            )
        ):
            if _in_window(exposed[opted], opted_at, window):
                exposed[opted].opted_out = True
        for complainer, complained_at in session.execute(
            select(Conversation.debtor_id, Handoff.created_at)
            .join(Conversation, Conversation.id == Handoff.conversation_id)
            .where(
                Conversation.debtor_id.in_(chunk),
                Handoff.reason.in_(COMPLAINT_HANDOFF_REASONS),
            )
        ):
            if complainer is not None and _in_window(exposed[complainer], complained_at, window):
                exposed[complainer].complained = True
    if outcome == "paid_full":
        _paid_in_full(session, exposed, window)


def _paid_in_full(session: Session, exposed: dict[int, Exposed], window: timedelta) -> None:
    invoice_ids = sorted({i for e in exposed.values() for i in e.invoice_ids})
    paid_at: dict[int, datetime | None] = {}
    for chunk in _chunks(invoice_ids):
        for invoice_id, status, at in session.execute(
            select(Invoice.id, Invoice.status, Invoice.paid_at).where(Invoice.id.in_(chunk))
        ):
            paid_at[invoice_id] = at if status == "paid" else None
    for e in exposed.values():
        e.success = bool(e.invoice_ids) and all(
            _in_window(e, paid_at.get(i), window) for i in e.invoice_ids
        )


def compute(session: Session, experiment: Experiment, *, now: datetime) -> Results:
    exposed = first_exposures(session, experiment.id)
    attribute(session, exposed, outcome=experiment.outcome, window_days=experiment.window_days)
    return summarise(experiment, exposed.values(), now=now)


def summarise(experiment: Experiment, exposed: Iterable[Exposed], *, now: datetime) -> Results:
    """Per-arm counts, intervals, lift, P(best) and the series over time (pure computation)."""
    arms = [
        ArmResult(
            a.index,
            a.name,
            a.variant_index,
            a.hour,
            channels=a.channels,
            offset_days=a.offset_days,
            stopped_reason=a.stop_reason,
        )
        for a in experiment.arms
    ]
    window = timedelta(days=experiment.window_days)
    by_day: dict[date, list[tuple[int, int]]] = defaultdict(lambda: [(0, 0)] * len(arms))
    for e in exposed:
        arm = arms[e.arm]
        arm.exposed += 1
        arm.opt_outs += e.opted_out
        arm.complaints += e.complained
        for currency, amount in e.amounts.items():
            arm.amount_minor[currency] = arm.amount_minor.get(currency, 0) + amount
        if e.t0 + window <= now:
            arm.n += 1
            arm.successes += e.success
            tally = by_day[e.t0.date()]
            s, n = tally[e.arm]
            tally[e.arm] = (s + e.success, n + 1)
    control = arms[0]
    p_best = prob_best([(a.successes, a.n) for a in arms])
    weights = experiment.weights or [a.share for a in experiment.arms]
    total = sum(weights) or 1.0
    for arm, p, w in zip(arms, p_best, weights, strict=False):
        arm.rate_interval = wilson(arm.successes, arm.n)
        arm.p_best = p if any(a.n for a in arms) else 0.0
        arm.share = w / total
        if arm.index and arm.n and control.n:
            arm.lift = arm.rate - control.rate
            arm.lift_interval = lift_interval(arm.successes, arm.n, control.successes, control.n)
            arm.relative_lift = arm.lift / control.rate if control.rate else None
    series: list[tuple[date, list[float | None]]] = []
    running = [(0, 0)] * len(arms)
    for day in sorted(by_day):
        running = [(s + ds, n + dn) for (s, n), (ds, dn) in zip(running, by_day[day], strict=True)]
        series.append((day, [s / n if n else None for s, n in running]))
    return Results(experiment.id, experiment.outcome, experiment.window_days, arms, series)
