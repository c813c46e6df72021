"""`relance accounting export`: collection activity of a period, CSV or JSON."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

accounting_app = typer.Typer(no_args_is_help=True, help="Exports for the creditor's accountant.")


def register(app: typer.Typer) -> None:
    app.add_typer(accounting_app, name="accounting")


@accounting_app.command("export")
def export(
    start: datetime = typer.Option(..., "--from", formats=["%Y-%m-%d"], help="First day"),
    end: datetime = typer.Option(..., "--to", formats=["%Y-%m-%d"], help="Day after the last"),
    fmt: str = typer.Option("csv", "--format", help="csv or json"),
    out: Path | None = typer.Option(None, "--out", help="File to write (default: stdout)"),
) -> None:
    """Payments, credit notes, account credits and cancellations of [from, to)."""
    from relance.accounting.export import journal, to_csv, to_json
    from relance.db.session import session_scope
    from relance.private_files import write_private

    if fmt not in ("csv", "json"):
        raise typer.BadParameter("format must be csv or json")
    with session_scope() as session:
        lines = journal(session, start.date(), end.date())
    data = to_csv(lines) if fmt == "csv" else to_json(lines, start.date(), end.date())
    if out is None:
        typer.echo(data.decode(), nl=False)
    else:
        write_private(out, data)
        typer.echo(f"{len(lines)} lines written to {out}", err=True)
