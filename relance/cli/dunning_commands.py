"""Dunning commands: plan, dispatch, timeline, letters render, evidence, worker."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from relance.db.models import Debtor

console = Console()
letters_app = typer.Typer(no_args_is_help=True, help="Formal letters (mise en demeure).")


def register(app: typer.Typer) -> None:
    app.command("plan")(plan_command)
    app.command("dispatch")(dispatch_command)
    app.command("timeline")(timeline_command)
    app.command("evidence")(evidence_command)
    app.command("worker")(worker_command)
    app.add_typer(letters_app, name="letters")


def _at(day: str | None) -> datetime | None:
    """--date YYYY-MM-DD → that day at 10:00 UTC (a time inside the FR windows)."""
    if not day:
        return None
    return datetime.combine(datetime.fromisoformat(day).date(), time(10, 0), tzinfo=UTC)


def _debtor(session: Session, ref: str) -> Debtor:
    from sqlalchemy import select

    from relance.db.models import Debtor

    debtor = session.scalars(select(Debtor).where(Debtor.customer_number == ref)).first()
    if debtor is None and ref.isdigit():
        debtor = session.get(Debtor, int(ref))
    if debtor is None:
        console.print(f"[red]no debtor {ref!r} (id or customer number)[/red]")
        raise typer.Exit(1)
    return debtor


def plan_command(
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what would be planned; write nothing"
    ),
    date: str = typer.Option(None, "--date", help="Plan as of this day (YYYY-MM-DD)"),
    top: int = typer.Option(20, help="How many contacts to list"),
) -> None:
    """Plan today's dunning actions for every open invoice (idempotent)."""
    from sqlalchemy import func, select

    from relance.db.models import Debtor
    from relance.db.session import session_scope
    from relance.dunning.planner import plan

    with session_scope() as session:
        total = session.scalar(select(func.count(Debtor.id))) or 0
        with Progress(
            TextColumn("planning"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("plan", total=total)
            report = plan(
                session,
                now=_at(date),
                dry_run=dry_run,
                keep=top,
                progress=lambda n: progress.advance(task, n),
            )
        if dry_run:
            session.rollback()
    counts = Table(
        title=f"Plan for {report.run_date} ({'dry run' if dry_run else f'run {report.run_id}'})"
    )
    counts.add_column("outcome")
    counts.add_column("count", justify="right")
    for key, value in sorted(report.counts.items()):
        counts.add_row(key, str(value))
    console.print(counts)
    contacts = Table(title=f"Top {min(top, len(report.groups))} contacts by priority")
    for column in ("priority", "debtor", "stage", "kind", "channels", "invoices"):
        contacts.add_column(column)
    for group in report.groups[:top]:
        contacts.add_row(
            f"{group.priority:.1f}",
            str(group.debtor_id),
            group.lead_stage.key,
            group.kind,
            ", ".join(group.channels) or "-",
            ", ".join(group.invoice_numbers),
        )
    console.print(contacts)
    if report.skips:
        skips = Table(title="Skipped (first ones)")
        for column in ("debtor", "invoice", "stage", "reason", "detail"):
            skips.add_column(column)
        for skip in report.skips[:top]:
            skips.add_row(
                str(skip.debtor_id), str(skip.invoice_id), skip.stage, skip.reason, skip.detail
            )
        console.print(skips)


def dispatch_command(limit: int = typer.Option(500, help="Contacts to make at most")) -> None:
    """Send the due contacts now (compliance-checked, exactly once)."""
    from relance.worker import jobs, runner

    runner._wire()
    outcomes = jobs.dispatch_dunning(limit=limit)
    console.print(outcomes or "nothing due")


def timeline_command(
    debtor: str = typer.Argument(..., help="Debtor id or customer number"),
    days: int = typer.Option(60, help="How far ahead"),
) -> None:
    """What will happen to this debtor over the next days under the current policy, and why."""
    from relance.compliance.windows import zone
    from relance.db.session import session_scope
    from relance.dunning.timeline import timeline

    with session_scope() as session:
        row = _debtor(session, debtor)
        entries = timeline(session, row, days=days)
        table = Table(title=f"{row.display_name} ({row.customer_number}) — next {days} days")
        for column in ("when (local)", "stage", "channels", "invoices", "why"):
            table.add_column(column)
        tz = zone(row.timezone)
        for entry in entries:
            when = (
                entry.at.astimezone(tz).strftime("%a %d %b %Y %H:%M")
                if entry.at
                else entry.day.strftime("%a %d %b %Y")
            )
            style = "dim" if entry.skipped else None
            table.add_row(
                when,
                entry.stage,
                ", ".join(entry.channels) or "-",
                ", ".join(entry.invoices),
                "\n".join(entry.why),
                style=style,
            )
        console.print(table if entries else "nothing planned in this period")


@letters_app.command("render")
def letters_render(
    debtor: str = typer.Option(..., "--debtor", help="Debtor id or customer number"),
    out: Path = typer.Option(Path("mise_en_demeure.pdf"), "--out", help="PDF file to write"),
    language: str = typer.Option(None, "--language", help="fr or en (default: the debtor's)"),
    payment_url: str = typer.Option(None, "--payment-url", help="Link printed with a QR code"),
    queue: bool = typer.Option(False, "--queue", help="Store it and queue it for registered mail"),
) -> None:
    """Render a mise en demeure for the debtor's open invoices (preview, or queue it)."""
    from relance.compliance.windows import zone
    from relance.db.base import utcnow
    from relance.db.session import session_scope
    from relance.errors import Conflict
    from relance.letters.render import render_pdf
    from relance.letters.service import create_formal_notice, draft, open_invoices
    from relance.policy.service import active_policy
    from relance.private_files import write_private

    with session_scope() as session:
        row = _debtor(session, debtor)
        if queue:
            try:
                letter = create_formal_notice(
                    session, row, None, language=language, payment_url=payment_url
                )
            except Conflict as exc:
                if exc.code != "already_in_letter":
                    raise
                letters = exc.details["letters"].items()
                listed = ", ".join(f"invoice {i} in letter {n}" for i, n in letters)
                console.print(
                    f"[red]nothing to queue: already in a queued or posted letter ({listed})[/red]"
                )
                raise typer.Exit(1) from exc
            write_private(out, Path(letter.pdf_path or "").read_bytes())
            console.print(f"letter {letter.id} queued (deadline {letter.deadline})")
        else:
            as_of = utcnow().astimezone(zone(row.timezone)).date()
            invoices = open_invoices(session, row, None, as_of=as_of)
            if not invoices:
                console.print("[red]no open invoice past its due date[/red]")
                raise typer.Exit(1)
            result = draft(
                session,
                row,
                invoices,
                as_of=as_of,
                policy=active_policy(session),
                language=language,
                payment_url=payment_url,
            )
            write_private(out, render_pdf(result.html))
    console.print(f"[green]written {out}[/green]")


def evidence_command(
    debtor: str = typer.Argument(..., help="Debtor id or customer number"),
    out: Path | None = typer.Option(
        None, "--out", help="ZIP file (default: evidence-<number>.zip)"
    ),
) -> None:
    """Build the evidence pack (ZIP) for a collection agency or an injonction de payer."""
    from relance.db.session import session_scope
    from relance.evidence.service import build_pack
    from relance.private_files import write_private

    with session_scope() as session:
        row = _debtor(session, debtor)
        target = out or Path(f"evidence-{row.customer_number}.zip")
        write_private(target, build_pack(session, row, actor="cli"))
    console.print(f"[green]written {target}[/green]")


def worker_command(
    beat: bool = typer.Option(
        True,
        "--beat/--no-beat",
        help="Run Celery beat in this worker. Replicated workers: exactly one keeps it.",
    ),
) -> None:
    """Run the periodic jobs: Celery worker (+ beat) if CELERY_BROKER_URL is set, else in-process."""
    import logging

    from relance.worker.runner import WorkerConfigError, run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        run_worker(beat=beat)
    except WorkerConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
