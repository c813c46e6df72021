"""Planner: which stage is due today for every open invoice, grouped per debtor, by priority.

Walks the debtors in id ranges (keyset chunks): per chunk, one query for the invoices and a few
range queries for the context (disputes, promises, plans, handoffs, contacts, earlier actions).
Memory stays bounded by the chunk size whatever the number of invoices. Planned actions are
inserted with on-conflict-do-nothing on `<invoice>:<stage>`, so running the planner twice (or on
two machines) plans nothing twice. Skips are recorded per run with their reason.
"""

from __future__ import annotations

import heapq
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    and_,
    case,
    cast,
    func,
    literal,
    null,
    select,
    text,
    true,
)
from sqlalchemy.orm import Session

from relance.compliance.windows import zone
from relance.db.base import utcnow
from relance.db.models import Debtor, DunningAction, DunningRun, Invoice
from relance.db.models.enums import InvoiceStatus
from relance.dunning import priority
from relance.dunning.context import DebtorContext, InvoiceRow, load_contexts, skip_reason
from relance.dunning.writer import PENDING, write_chunk
from relance.policy.schema import Policy, Stage, Track
from relance.policy.service import active_policy, active_version

log = logging.getLogger(__name__)

# segment, risk class, jurisdiction, tz, has an address, preferred channel (portal preferences)
DebtorInfo = tuple[str, str, str, str, bool, str | None]
OPEN_STATUSES = (InvoiceStatus.OPEN, InvoiceStatus.DISPUTED)
# Dispatch-time cancellations that do not close the stage: once the cause is gone it is replanned.
REVIVABLE = ("disputed", "paused", "promised", "on_plan", "handed_off")


def group_kind(stage: Stage) -> str:
    """Messages and calls of one debtor on one day share a contact; letters and legal do not."""
    return "contact" if stage.kind in ("message", "call") else stage.kind


def current_stage(track: Track, days_from_due: int) -> Stage | None:
    """The latest stage whose offset has been reached (earlier ones missed are not sent late).

    A pre-due stage (negative offset) lapses on the due date: nothing is sent between the due
    date and the first overdue stage.
    """
    due = [s for s in track.stages if s.offset_days <= days_from_due]
    if not due or (due[-1].offset_days < 0 <= days_from_due):
        return None
    return due[-1]


def idempotency_key(invoice_id: int, stage_key: str) -> str:
    return f"{invoice_id}:{stage_key}"


@dataclass
class PlannedGroup:
    """One contact to make: a debtor, a lead stage (the most advanced one), several invoices."""

    debtor_id: int
    group_key: str
    kind: str
    lead_stage: Stage
    channels: list[str]
    invoices: list[tuple[int, str]] = field(default_factory=list)  # (invoice id, stage key)
    invoice_numbers: list[str] = field(default_factory=list)
    balance_minor: int = 0
    max_days_late: int = -999
    priority: float = 0.0


@dataclass
class SkipRecord:
    invoice_id: int
    debtor_id: int
    stage: str
    reason: str
    detail: str


@dataclass
class PlanReport:
    run_id: int | None
    run_date: date
    dry_run: bool
    counts: Counter[str] = field(default_factory=Counter)
    groups: list[PlannedGroup] = field(default_factory=list)  # first `keep` only
    skips: list[SkipRecord] = field(default_factory=list)  # first `keep` only


ANALYZE_AFTER_ROWS = 10_000


def _refresh_statistics(session: Session, counts: Counter[str]) -> None:
    """ANALYZE dunning_actions after a run that wrote many rows (a first run after an import).

    Without it PostgreSQL keeps planning the next runs on "empty table" statistics until
    autovacuum gets round to it (or never, where autovacuum is off): the same-day rerun on
    1M invoices took 340 s on stale statistics and 30 s after ANALYZE (BENCHMARKS.md).
    """
    written = sum(n for key, n in counts.items() if key.startswith("stage:"))
    if written >= ANALYZE_AFTER_ROWS and session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE dunning_actions"))


def _priority(group: PlannedGroup) -> float:
    return group.priority


def local_today(now: datetime, tz_name: str | None, cache: dict[str, date]) -> date:
    key = tz_name or ""
    if key not in cache:
        cache[key] = now.astimezone(zone(tz_name)).date()
    return cache[key]


def plan(
    session: Session,
    *,
    now: datetime | None = None,
    policy: Policy | None = None,
    dry_run: bool = False,
    debtor_ids: list[int] | None = None,
    chunk_size: int = 2000,
    keep: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> PlanReport:
    """Plan today's dunning actions (the caller commits). `progress` gets debtors processed."""
    now = now or utcnow()
    policy = policy or active_policy(session)
    session.flush()  # the chunk reads go through Core, which does not autoflush
    run = None
    if not dry_run:
        run = DunningRun(
            run_date=now.date(), started_at=now, policy_version=active_version(session)
        )
        session.add(run)
        session.flush()
    report = PlanReport(run_id=run.id if run else None, run_date=now.date(), dry_run=dry_run)
    today_cache: dict[str, date] = {}
    memos = _Memos()
    from relance.experiments.stage_offset import earliest_offset, running_offsets, tracks_for

    # A running stage-offset experiment moves a stage for its debtors: they are planned on their
    # arm's track, which the SQL stage filter (the policy's offsets) does not know.
    offsets = running_offsets(session)
    # No stage due before this.
    horizon = now.date() + timedelta(days=1 - earliest_offset(policy, offsets))
    stage_filter = None if offsets else _stage_filter(session, policy, now)
    for lo, hi, debtors in _debtor_chunks(session, chunk_size, debtor_ids):
        if stage_filter is not None:
            invoices, existing = _invoices_and_actions(
                session, lo, hi, horizon, debtor_ids, stage_filter(lo, hi)
            )
        else:
            invoices = _invoices(session, lo, hi, horizon, debtor_ids)
            existing = _existing_actions(session, lo, hi, debtor_ids) if invoices else {}
        if invoices:
            earliest = min(local_today(now, d[3], today_cache) for d in debtors.values())
            contexts = load_contexts(session, earliest, lo=lo, hi=hi, debtor_ids=debtor_ids)
            moved = tracks_for(
                session,
                offsets,
                policy,
                {(i.debtor_id, *debtors[i.debtor_id][:2]) for i in invoices},
            )
            groups, skips, supersede, retire = _plan_chunk(
                invoices,
                debtors,
                contexts,
                existing,
                policy,
                now,
                today_cache,
                report.counts,
                memos,
                moved,
            )
            if not dry_run and run is not None:
                write_chunk(session, run.id, groups, skips, supersede, retire, now)
            # Keep the `keep` highest priorities seen so far (memory stays bounded).
            report.groups = heapq.nlargest(keep, report.groups + groups, key=_priority)
            report.skips.extend(skips[: max(keep - len(report.skips), 0)])
        if progress:
            progress(len(debtors))
    if run is not None:
        from relance.experiments.send_hour import schedule_policy_hours

        session.flush()
        timed = schedule_policy_hours(session, run.id, now=now, policy=policy)
        if timed:
            report.counts["policy_hour_moved"] = timed
    if run is not None and policy.contact.best_time:
        from relance.experiments.best_time import schedule_best_times

        session.flush()
        report.counts["best_time_moved"] = schedule_best_times(session, run.id, now=now)
    if run is not None:
        from relance.experiments.channel_order import order_channels
        from relance.experiments.send_hour import schedule_send_hours

        session.flush()
        ordered = order_channels(session, run.id, policy=policy)
        if ordered:
            report.counts["channel_order_applied"] = ordered
        timed = schedule_send_hours(session, run.id, now=now, policy=policy)
        if timed:
            report.counts["send_hour_moved"] = timed
    if run is not None:
        run.finished_at = utcnow()
        run.counts = dict(report.counts)
        _refresh_statistics(session, report.counts)
    report.groups.sort(key=lambda g: -g.priority)
    return report


def _debtor_chunks(
    session: Session, chunk_size: int, debtor_ids: list[int] | None
) -> Iterable[tuple[int, int, dict[int, DebtorInfo]]]:
    """Keyset pagination over debtors: (lo, hi, {id: (segment, risk, jurisdiction, tz, addr)})."""
    last = 0
    columns = (
        Debtor.id,
        Debtor.segment,
        Debtor.risk_class,
        Debtor.jurisdiction,
        Debtor.timezone,
        Debtor.address_line.is_not(None),
        Debtor.preferred_channel,
    )
    while True:
        query = select(*columns).where(Debtor.id > last).order_by(Debtor.id).limit(chunk_size)
        if debtor_ids is not None:
            query = query.where(Debtor.id.in_(debtor_ids))
        rows = session.execute(query).all()
        if not rows:
            return
        last = rows[-1][0]
        yield rows[0][0], last, {r[0]: (r[1], r[2], r[3], r[4], bool(r[5]), r[6]) for r in rows}


INVOICE_COLUMNS = (
    Invoice.id,
    Invoice.debtor_id,
    Invoice.number,
    Invoice.amount_minor,
    Invoice.paid_minor,
    Invoice.currency,
    Invoice.issue_date,
    Invoice.due_date,
    Invoice.status,
    Invoice.dunning_paused_until,
)


def _invoice_query(lo: int, hi: int, horizon: date, debtor_ids: list[int] | None) -> Any:
    query = (
        select(*INVOICE_COLUMNS)
        .where(
            Invoice.debtor_id.between(lo, hi),
            Invoice.status.in_(OPEN_STATUSES),
            Invoice.due_date < horizon,
        )
        .order_by(Invoice.debtor_id, Invoice.due_date, Invoice.id)
    )
    if debtor_ids is not None:
        query = query.where(Invoice.debtor_id.in_(debtor_ids))
    return query


def _invoices(
    session: Session, lo: int, hi: int, horizon: date, debtor_ids: list[int] | None
) -> list[InvoiceRow]:
    rows = session.connection().execute(_invoice_query(lo, hi, horizon, debtor_ids)).all()
    return [InvoiceRow._make(row) for row in rows]


def _invoices_and_actions(
    session: Session,
    lo: int,
    hi: int,
    horizon: date,
    debtor_ids: list[int] | None,
    stage_filter: ColumnElement[bool],
) -> tuple[list[InvoiceRow], dict[int, list[tuple[int, str, str]]]]:
    """The chunk's invoices whose stage is still to plan, with their live earlier actions.

    One query: the stage filter (see `_stage_filter`) and an outer join on the invoice's actions,
    of which only those that can still change are kept (pending ones, to supersede; revivable
    ones, to retire). Actions in any other state cannot matter here: the filter already dropped
    every invoice whose current stage has one. The debtor range is repeated on debtors so PostgreSQL reads only this chunk's debtors.
    """
    query = (
        _invoice_query(lo, hi, horizon, debtor_ids)
        .add_columns(
            DunningAction.id, DunningAction.stage, DunningAction.status, DunningAction.outcome
        )
        .join_from(Invoice, Debtor, Debtor.id == Invoice.debtor_id)
        .outerjoin_from(
            Invoice,
            DunningAction,
            # No status condition here: right after a first run the statistics may still say
            # "no actions", and PostgreSQL would then scan the whole status index per chunk.
            and_(DunningAction.invoice_id == Invoice.id, DunningAction.debtor_id.between(lo, hi)),
        )
        .where(Debtor.id.between(lo, hi), stage_filter)
    )
    invoices: list[InvoiceRow] = []
    existing: dict[int, list[tuple[int, str, str]]] = {}
    last = None
    for row in session.connection().execute(query).all():
        invoice_id = row[0]
        if invoice_id != last:  # an invoice's rows are adjacent (ordered by debtor, due, id)
            invoices.append(InvoiceRow._make(row[:10]))
            last = invoice_id
        action_id, stage, status, outcome = row[10:]
        if action_id is None:
            continue
        if status == "cancelled" and outcome in REVIVABLE:
            status = "revivable"
        elif status not in PENDING:
            continue  # sent or closed: only the stage filter needed it
        existing.setdefault(invoice_id, []).append((action_id, stage, status))
    return invoices, existing


def _stage_filter(
    session: Session, policy: Policy, now: datetime
) -> Callable[[int, int], ColumnElement[bool]] | None:
    """Keep only invoices whose current stage still has to be planned.

    The stage of each invoice is computed in SQL (same rules as `current_stage`, the debtor's
    local date per time zone) and matched against the unique key of earlier actions through its
    index, so a routine run never reads back the actions already planned. The Python loop keeps
    the same checks, so the result does not depend on this filter.
    """
    dialect = session.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):
        return None
    zones = list(session.scalars(select(Debtor.timezone).distinct()))
    cache: dict[str, date] = {}
    today = (
        case(
            {tz: literal(local_today(now, tz, cache), Date) for tz in zones},
            value=Debtor.timezone,
            else_=literal(local_today(now, None, cache), Date),
        )
        if zones
        else literal(local_today(now, None, cache), Date)
    )
    if dialect == "sqlite":
        days: Any = cast(func.julianday(today) - func.julianday(Invoice.due_date), Integer)
    else:
        days = today - Invoice.due_date  # date - date is an integer number of days

    def stage_case(track: Track) -> Any:
        whens = []
        for stage in reversed(track.stages):
            reached = days >= stage.offset_days
            if stage.offset_days < 0:
                reached = and_(reached, days < 0)  # a pre-due stage lapses on the due date
            whens.append((reached, literal(stage.key)))
        return case(*whens, else_=null())

    def matches(track: Track) -> ColumnElement[bool]:
        parts = []
        if track.segment != "*":
            parts.append(Debtor.segment == track.segment)
        if track.risk_class != "*":
            parts.append(Debtor.risk_class == track.risk_class)
        return and_(true(), *parts)

    stage_expr = case(
        *[(matches(t), stage_case(t)) for t in policy.tracks[:-1]],
        else_=stage_case(policy.tracks[-1]),
    )

    def for_range(lo: int, hi: int) -> ColumnElement[bool]:
        # The debtor range lets PostgreSQL anti-join against this chunk's actions only.
        done = (
            select(literal(1))
            .where(
                DunningAction.debtor_id.between(lo, hi),
                DunningAction.invoice_id == Invoice.id,
                DunningAction.stage == stage_expr,
                ~and_(DunningAction.status == "cancelled", DunningAction.outcome.in_(REVIVABLE)),
            )
            .correlate_except(DunningAction)  # the outer query also joins the live actions
            .exists()
        )
        return and_(stage_expr.is_not(None), ~done)

    return for_range


def _existing_actions(
    session: Session, lo: int, hi: int, debtor_ids: list[int] | None
) -> dict[int, list[tuple[int, str, str]]]:
    """invoice id -> [(action id, stage, status)] for every action ever planned."""
    query = select(
        DunningAction.invoice_id,
        DunningAction.id,
        DunningAction.stage,
        DunningAction.status,
        DunningAction.outcome,
    ).where(DunningAction.debtor_id.between(lo, hi))
    if debtor_ids is not None:
        query = query.where(DunningAction.debtor_id.in_(debtor_ids))
    found: dict[int, list[tuple[int, str, str]]] = {}
    for invoice_id, action_id, stage, status, outcome in session.connection().execute(query):
        if status == "cancelled" and outcome in REVIVABLE:
            status = "revivable"  # skipped at dispatch (paid, disputed...): may be planned again
        found.setdefault(invoice_id, []).append((action_id, stage, status))
    return found


def channels_for(
    stage: Stage, ctx: DebtorContext, has_address: bool = True
) -> tuple[list[str], list[str]]:
    """(usable channels in order, opted-out channels) for this stage and debtor."""
    usable: list[str] = []
    opted_out: list[str] = []
    for channel in stage.channels:
        if channel == "letter":
            if has_address:
                usable.append(channel)
            continue
        contact = ctx.contact_for(channel)
        if contact is None:
            continue
        if contact.reachable:
            usable.append(channel)
        elif contact.opted_out_at is not None or not contact.consent:
            opted_out.append(channel)
    return usable, opted_out


def preferred_first(usable: list[str], preferred: str | None) -> list[str]:
    """The debtor's preferred channel (portal preferences) first, when the stage may use it."""
    if preferred is not None and preferred in usable[1:]:
        return [preferred, *(c for c in usable if c != preferred)]
    return usable


@dataclass
class _Memos:
    """Decisions that depend on a few values only, shared by every chunk of a run."""

    # (segment, risk class, days from due) -> stage
    stages: dict[tuple[str, str, int], Stage | None] = field(default_factory=dict)
    # (stage, has address, what contact_for sees of the contacts) -> (usable, opted out)
    channels: dict[tuple[str, bool, tuple[Any, ...]], tuple[list[str], list[str]]] = field(
        default_factory=dict
    )


def _contacts_shape(ctx: DebtorContext) -> tuple[Any, ...]:
    """Everything `channels_for` reads from the contacts, in order (addresses and ids aside)."""
    return tuple((c.channel, c.consent, c.opted_out_at is None, c.status) for c in ctx.contacts)


def _plan_chunk(
    invoices: list[InvoiceRow],
    debtors: dict[int, DebtorInfo],
    contexts: dict[int, DebtorContext],
    existing: dict[int, list[tuple[int, str, str]]],
    policy: Policy,
    now: datetime,
    today_cache: dict[str, date],
    counts: Counter[str],
    memos: _Memos | None = None,
    moved: dict[int, Track] | None = None,
) -> tuple[list[PlannedGroup], list[SkipRecord], list[int], list[int]]:
    """`moved`: the track of each debtor whose stage-offset experiment arm moves a stage."""
    # Per-invoice work is kept to dictionary look-ups (a first run sees every open invoice):
    # stages and channels are memoised, counters are local and merged into `counts` at the end.
    groups: dict[tuple[int, str], PlannedGroup] = {}
    skips: list[SkipRecord] = []
    supersede: list[int] = []
    retire: list[int] = []
    tally: Counter[str] = Counter()
    stage_tally: dict[str, int] = {}
    empty = DebtorContext()
    no_actions: list[tuple[int, str, str]] = []
    memos = memos or _Memos()
    stage_memo = memos.stages
    channel_memo = memos.channels
    shapes: dict[int, tuple[Any, ...]] = {}
    for inv in invoices:
        debtor_id = inv.debtor_id
        segment, risk, _jurisdiction, tz, has_address, preferred = debtors[debtor_id]
        today = today_cache.get(tz or "") or local_today(now, tz, today_cache)
        days = (today - inv.due_date).days
        memo_key = (segment, risk, days)
        if moved and debtor_id in moved:
            stage = current_stage(moved[debtor_id], days)
        elif memo_key in stage_memo:
            stage = stage_memo[memo_key]
        else:
            stage = stage_memo[memo_key] = current_stage(policy.track_for(segment, risk), days)
        if stage is None:
            tally["not_due"] += 1
            continue
        stage_key = stage.key
        previous = existing.get(inv.id, no_actions)
        revive = [a for a, s, status in previous if s == stage_key and status == "revivable"]
        if not revive and any(s == stage_key for _, s, _ in previous):
            tally["already_planned"] += 1
            continue
        ctx = contexts.get(debtor_id, empty)
        reason = skip_reason(inv, ctx, today)
        usable: list[str] = []
        if reason is None and stage.kind != "legal":
            shape = shapes.get(debtor_id)
            if shape is None:
                shape = shapes[debtor_id] = _contacts_shape(ctx)
            channel_key = (stage_key, has_address, shape)
            if channel_key not in channel_memo:
                channel_memo[channel_key] = channels_for(stage, ctx, has_address)
            usable, opted_out = channel_memo[channel_key]
            usable = preferred_first(usable, preferred)
            for channel in opted_out if usable else []:
                tally["channel_opted_out"] += 1
                skips.append(
                    SkipRecord(
                        inv.id,
                        debtor_id,
                        stage_key,
                        "channel_opted_out",
                        f"{channel} opted out; other channels tried",
                    )
                )
            if not usable:
                if opted_out:
                    reason = ("opted_out", "every channel of this stage is opted out")
                elif stage.kind == "letter":
                    reason = ("no_postal_address", "no postal address for a letter")
                else:
                    reason = ("no_contact", f"no contact on {', '.join(stage.channels)}")
        if reason is not None:
            tally[f"skip:{reason[0]}"] += 1
            skips.append(SkipRecord(inv.id, debtor_id, stage_key, reason[0], reason[1]))
            continue
        if previous:
            supersede.extend(a for a, s, status in previous if status in PENDING)
            retire.extend(revive)  # the old row keeps its history under a retired key
        kind = group_kind(stage)
        group = groups.get((debtor_id, kind))
        if group is None:
            key = f"{debtor_id}:{kind}:{today.isoformat()}"
            group = groups[debtor_id, kind] = PlannedGroup(debtor_id, key, kind, stage, usable)
        elif stage.offset_days > group.lead_stage.offset_days:
            group.lead_stage, group.channels = stage, usable
        group.invoices.append((inv.id, stage_key))
        group.invoice_numbers.append(inv.number)
        group.balance_minor += inv.balance_minor
        if days > group.max_days_late:
            group.max_days_late = days
        stage_tally[stage_key] = stage_tally.get(stage_key, 0) + 1
    counts.update(tally)
    counts.update({f"stage:{key}": n for key, n in stage_tally.items()})
    for group in groups.values():
        risk = debtors[group.debtor_id][1]
        group.priority = priority.score(
            policy.priority,
            balance_minor=group.balance_minor,
            days_late=group.max_days_late,
            risk_class=risk,
            broken_promises=contexts.get(group.debtor_id, empty).broken_promises,
        )
    counts["groups"] += len(groups)
    return list(groups.values()), skips, supersede, retire
