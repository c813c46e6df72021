"""`relance debtor export|erase` and `relance retention run`: a debtor's personal data.

Run by an operator with shell access to the server, so they act with admin rights; the audit
trail records them as `cli:<login>` (from $USER) so the act can be traced to a person.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from relance.db.models import Debtor

console = Console()
debtor_app = typer.Typer(no_args_is_help=True, help="A debtor's personal data (GDPR requests).")
retention_app = typer.Typer(no_args_is_help=True, help="Retention of conversation content.")


def register(app: typer.Typer) -> None:
    app.add_typer(debtor_app, name="debtor")
    app.add_typer(retention_app, name="retention")


def _actor() -> str:
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return f"cli:{login}"[:80]


def _debtor_or_exit(session: Session, debtor_ref: str) -> Debtor:
    """The debtor named on the command line, or a one-line error and exit code 1."""
    from relance.errors import NotFound
    from relance.privacy.repository import find_debtor

    try:
        return find_debtor(session, debtor_ref)
    except NotFound as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(code=1) from exc


@debtor_app.command("export")
def export(
    debtor_ref: str = typer.Argument(..., metavar="DEBTOR_REF", help="Customer number (or id)"),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="ZIP file to write"),
) -> None:
    """Everything held about one debtor: export.json (machine-readable), CSVs, transcript."""
    from relance.db.session import session_scope
    from relance.privacy.export import build_export
    from relance.private_files import write_private

    with session_scope() as session:
        debtor = _debtor_or_exit(session, debtor_ref)
        data = build_export(session, debtor, actor=_actor())
        out.parent.mkdir(parents=True, exist_ok=True)
        write_private(out, data)
    console.print(f"wrote {out} ({len(data)} bytes); the export is recorded in the audit trail")


@debtor_app.command("erase")
def erase(
    debtor_ref: str = typer.Argument(..., metavar="DEBTOR_REF", help="Customer number (or id)"),
    reason: str = typer.Option(..., "--reason", help="Why (the request's date and channel...)"),
    force: bool = typer.Option(
        False, "--force", help="Erase even with an open balance or an open dispute"
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation"),
) -> None:
    """Pseudonymise the debtor: personal data and conversations go, the accounts stay."""
    from relance.db.session import session_scope
    from relance.errors import RelanceError
    from relance.privacy.erasure import erase as erase_debtor

    with session_scope() as session:
        debtor = _debtor_or_exit(session, debtor_ref)
        if not yes and not typer.confirm(
            f"Erase the personal data of debtor {debtor.customer_number}? This cannot be undone"
        ):
            raise typer.Exit(code=1)
        try:
            report = erase_debtor(session, debtor, actor=_actor(), reason=reason, force=force)
        except RelanceError as exc:
            console.print(f"[red]{exc.message}[/red]")
            raise typer.Exit(code=1) from exc
    console.print(
        f"debtor {report.customer_number} erased"
        + (" (forced past: " + "; ".join(report.blockers) + ")" if report.forced else "")
    )
    for name, count in sorted(report.counts.items()):
        console.print(f"  {name}: {count}")
    console.print(f"  rasa_tracker_events_deleted: {report.tracker_events}")
    if report.leftovers:
        console.print(
            "[yellow]personal values still found (kept as accounting records or to "
            "review):[/yellow]"
        )
        for where, count in sorted(report.leftovers.items()):
            console.print(f"  {where}: {count} row(s)")


@retention_app.command("run")
def retention_run(
    dry_run: bool = typer.Option(False, "--dry-run", help="List what is due, change nothing"),
    days: int = typer.Option(
        0, "--days", min=0, help="Override RETENTION_CONVERSATION_DAYS (0: use the setting)"
    ),
) -> None:
    """Purge message bodies and transcripts of settled debtors past the retention period."""
    from relance.db.session import session_scope
    from relance.privacy.retention import run
    from relance.settings import get_settings

    settings = get_settings()
    chosen = days or settings.retention_conversation_days
    if chosen < 1:
        console.print("[yellow]retention is off (RETENTION_CONVERSATION_DAYS=0)[/yellow]")
        return
    with session_scope() as session:
        report = run(session, days=chosen, dry_run=dry_run, settings=settings)
    verb = "would purge" if dry_run else "purged"
    console.print(
        f"{verb} {report.messages} message(s) of {len(report.debtor_ids)} debtor(s) quiet and "
        f"settled since {report.cutoff:%Y-%m-%d}"
        + ("" if dry_run else f"; {report.tracker_events} Rasa tracker event(s) deleted")
        + f"; {report.unknown_sender_retries} unknown sender(s)' reply retries "
        + ("due" if dry_run else "deleted")
    )
    if dry_run and report.debtor_ids:
        console.print(
            "debtor ids: "
            + ", ".join(str(i) for i in report.debtor_ids[:50])
            + (" ..." if len(report.debtor_ids) > 50 else "")
        )
