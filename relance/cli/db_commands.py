"""Database and portfolio commands: migrate, import, demo."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

console = Console()


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate)
    app.command("import")(import_invoices)
    app.command("demo")(load_demo)


def migrate() -> None:
    """Bring the database schema to the latest version (Alembic upgrade head)."""
    from relance.db.migrate import upgrade_to_head

    upgrade_to_head()
    console.print("[green]database is up to date[/green]")


def import_invoices(
    csv_file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="CSV of debtors + invoices"
    ),
    shift_days: int = typer.Option(0, help="Shift every date by this many days (demo data)"),
) -> None:
    """Import debtors and invoices from CSV. Nothing is written unless every row is valid."""
    _import(csv_file, shift_days)


def load_demo() -> None:
    """Load the bundled demo portfolio, dates shifted to today (harmless if already loaded)."""
    from relance.portfolio.demo import DEMO_CSV, demo_shift_days

    _import(DEMO_CSV, demo_shift_days(date.today()))


def _import(path: Path, shift_days: int) -> None:
    """The file is read twice as a stream (counted for the progress bar, then imported), never
    held whole: a large file's import keeps one chunk of rows in memory."""
    import csv

    from relance.db.session import session_scope
    from relance.portfolio.importer import import_rows, stream_csv

    with path.open(encoding="utf-8-sig", newline="") as handle:
        total = max(sum(1 for _ in csv.reader(handle)) - 1, 0)
    with (
        path.open(encoding="utf-8-sig", newline="") as handle,
        Progress(console=console, transient=True) as progress,
        session_scope() as session,
    ):
        task = progress.add_task("importing", total=total)
        report = import_rows(
            session,
            stream_csv(handle),
            actor="cli",
            date_shift_days=shift_days,
            progress=lambda: progress.advance(task),
        )
        if not report.ok:
            session.rollback()
    if not report.ok:
        table = Table("line", "problems", title="Nothing was imported: fix these rows")
        for line, problems in sorted(report.errors.items()):
            table.add_row(str(line), "; ".join(problems))
        console.print(table)
        raise typer.Exit(code=1)
    console.print(
        f"[green]{report.rows} rows[/green]: {report.debtors_created} debtors and "
        f"{report.invoices_created} invoices created, {report.invoices_unchanged} unchanged"
    )
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
