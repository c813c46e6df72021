"""`relance einvoices import PATH...`: Factur-X PDFs, UBL and CII XML, folders and zip archives."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console()
einvoices_app = typer.Typer(no_args_is_help=True, help="Electronic invoices (Factur-X, UBL, CII).")


def register(app: typer.Typer) -> None:
    app.add_typer(einvoices_app, name="einvoices")


@einvoices_app.command("import")
def import_einvoices(
    paths: list[Path] = typer.Argument(..., exists=True, help="Files, folders or zip archives"),
    actor: str = typer.Option("cli", help="Who imports them (kept in the audit trail)"),
) -> None:
    """Import each file all-or-nothing; print one line per file and exit 1 if any was rejected.

    A re-imported invoice is updated, never duplicated; a credit note reduces the balance of the
    invoice it names.
    """
    from relance.db.session import session_scope
    from relance.einvoice.bundle import from_paths
    from relance.einvoice.service import import_sources

    with session_scope() as session:
        report = import_sources(session, from_paths(paths), actor=f"cli:{actor}")
    for entry in report.files:
        colour = "red" if entry.status == "rejected" else "green"
        console.print(
            f"[{colour}]{entry.status:9}[/{colour}] {entry.name} {entry.invoice_number}",
            highlight=False,
        )
        for problem in entry.problems:
            console.print(f"    [red]{problem.field}: {problem.message}[/red]", highlight=False)
        for warning in entry.warnings:
            console.print(f"    [yellow]{warning}[/yellow]", highlight=False)
    counts = {
        s: report.count(s) for s in ("created", "updated", "unchanged", "credited", "rejected")
    }
    console.print(", ".join(f"{k} {v}" for k, v in counts.items()))
    if not report.ok:
        raise typer.Exit(code=1)
