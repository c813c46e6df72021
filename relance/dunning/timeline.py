"""Timeline preview: what will happen to one debtor over the next days under the current policy.

It replays the planner's rules day by day (stage dates, pauses, skips) and the compliance rules
that can be known in advance (contact windows, Sundays, holidays, minimum gap), and says why each
step happens when it does. It writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.compliance.location import locate
from relance.compliance.profiles import contact_profile
from relance.compliance.windows import day_block, next_window_start, zone
from relance.db.base import utcnow
from relance.db.models import Debtor, DunningAction, Invoice
from relance.dunning.context import DebtorContext, InvoiceRow, load_contexts, skip_reason
from relance.dunning.planner import INVOICE_COLUMNS, OPEN_STATUSES, channels_for, group_kind
from relance.policy.schema import Policy, Stage
from relance.policy.service import active_policy

TIME_LIMITED = ("promised", "paused")


@dataclass
class TimelineEntry:
    day: date
    at: datetime | None  # first instant a contact is allowed (UTC); None for a skip
    stage: str
    kind: str
    channels: list[str]
    invoices: list[str]
    why: list[str] = field(default_factory=list)
    skipped: bool = False


def timeline(
    session: Session,
    debtor: Debtor,
    *,
    now: datetime | None = None,
    days: int = 60,
    policy: Policy | None = None,
) -> list[TimelineEntry]:
    now = now or utcnow()
    policy = policy or active_policy(session)
    tz = zone(debtor.timezone)
    today = now.astimezone(tz).date()
    horizon = today + timedelta(days=days)
    track = policy.track_for(debtor.segment, debtor.risk_class)
    ctx = load_contexts(session, today, debtor_ids=[debtor.id]).get(debtor.id, DebtorContext())
    done = {
        (inv_id, stage): status
        for inv_id, stage, status in session.execute(
            select(DunningAction.invoice_id, DunningAction.stage, DunningAction.status).where(
                DunningAction.debtor_id == debtor.id
            )
        )
    }
    invoices = [
        InvoiceRow._make(row)
        for row in session.execute(
            select(*INVOICE_COLUMNS)
            .where(Invoice.debtor_id == debtor.id, Invoice.status.in_(OPEN_STATUSES))
            .order_by(Invoice.due_date, Invoice.id)
        )
    ]
    raw: list[tuple[date, Stage, InvoiceRow, list[str]]] = []
    skips: list[TimelineEntry] = []
    for inv in invoices:
        stages = track.stages
        for i, stage in enumerate(stages):
            start = inv.due_date + timedelta(days=stage.offset_days)
            end = (
                inv.due_date + timedelta(days=stages[i + 1].offset_days - 1)
                if i + 1 < len(stages)
                else horizon
            )
            if stage.offset_days < 0:
                end = min(end, inv.due_date - timedelta(days=1))
            if end < today or start > horizon:
                continue
            status = done.get((inv.id, stage.key))
            if status in ("sent", "sending"):
                continue
            candidate, notes = max(start, today), []
            if status in ("planned", "retry"):
                notes.append(f"already planned ({status})")
            while candidate <= min(end, horizon):
                reason = skip_reason(inv, ctx, candidate)
                if reason is None:
                    raw.append((candidate, stage, inv, notes))
                    break
                if reason[0] in TIME_LIMITED:
                    resume = _pause_end(inv, ctx, candidate) + timedelta(days=1)
                    notes = [*notes, f"{reason[1]}: waits until {resume.isoformat()}"]
                    candidate = resume
                    continue
                skips.append(
                    TimelineEntry(
                        candidate,
                        None,
                        stage.key,
                        stage.kind,
                        [],
                        [inv.number],
                        [f"skipped: {reason[1]}"],
                        True,
                    )
                )
                break
    entries = _group(raw, ctx, debtor, policy) + skips
    _apply_windows(entries, debtor, policy)
    return sorted(entries, key=lambda e: (e.day, e.at or datetime.min.replace(tzinfo=tz)))


def _pause_end(inv: InvoiceRow, ctx: DebtorContext, day: date) -> date:
    ends = [d for d, ids in ctx.promises if d >= day and (not ids or inv.id in ids)]
    if inv.paused_until is not None and inv.paused_until >= day:
        ends.append(inv.paused_until)
    return max(ends) if ends else day


def _group(
    raw: list[tuple[date, Stage, InvoiceRow, list[str]]],
    ctx: DebtorContext,
    debtor: Debtor,
    policy: Policy,
) -> list[TimelineEntry]:
    groups: dict[tuple[date, str], tuple[Stage, TimelineEntry]] = {}
    for day, stage, inv, notes in raw:
        key = (day, group_kind(stage))
        if key not in groups:
            entry = TimelineEntry(day, None, stage.key, stage.kind, [], [], [])
            groups[key] = (stage, entry)
        lead, entry = groups[key]
        if stage.offset_days >= lead.offset_days:
            groups[key] = (stage, entry)
            entry.stage, entry.kind = stage.key, stage.kind
        entry.invoices.append(inv.number)
        entry.why.extend(n for n in notes if n not in entry.why)
        offset = (day - inv.due_date).days
        entry.why.append(f"{inv.number}: {stage.key} at J{offset:+d}")
    result = []
    for (_day, _kind), (lead, entry) in groups.items():
        usable, opted_out = channels_for(lead, ctx, bool(debtor.address_line))
        entry.channels = usable
        if opted_out:
            entry.why.append(f"opted out: {', '.join(opted_out)}")
        if lead.kind != "legal" and not usable:
            entry.skipped = True
            entry.why.append("skipped: no usable channel")
        result.append(entry)
    return result


def _apply_windows(entries: list[TimelineEntry], debtor: Debtor, policy: Policy) -> None:
    """First allowed instant per contact; a closed day moves it, the minimum gap spaces them."""
    profile = contact_profile(debtor.jurisdiction, debtor.contact_from, debtor.contact_until)
    place = locate(debtor)
    tz = zone(debtor.timezone)
    gap = timedelta(hours=policy.contact.min_gap_hours)
    last: datetime | None = None
    for entry in sorted(entries, key=lambda e: e.day):
        if entry.skipped:
            continue
        start = datetime.combine(entry.day, time(0, 0), tzinfo=tz)
        if entry.kind == "legal":
            entry.at = start
            continue
        if entry.kind == "letter":
            entry.at = start
            entry.why.append("letter: queued for registered mail, SMS notice follows")
            continue
        blocked = day_block(profile, entry.day, place.holiday_subdiv)
        if blocked:
            entry.why.append(f"moved: {blocked[1]}")
        at = next_window_start(profile, start, place)
        if last is not None and at < last + gap:
            at = next_window_start(profile, last + gap, place)
            entry.why.append(f"moved: minimum gap of {policy.contact.min_gap_hours:g} h")
        entry.at = at
        last = at
