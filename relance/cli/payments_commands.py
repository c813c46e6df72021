"""`relance payments ...`: money received outside the payment links (bank transfers)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console()
payments_app = typer.Typer(no_args_is_help=True, help="Payments received outside payment links.")


def register(app: typer.Typer) -> None:
    app.add_typer(payments_app, name="payments")


@payments_app.command("import-transfers")
def import_transfers(
    csv_file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Bank transfers CSV"),
    recorded_by: str = typer.Option("cli", help="Who records them (kept in the audit trail)"),
) -> None:
    """Record bank transfers (date, amount, currency, reference, customer_number, invoice_number).

    Each is allocated like any payment; a reference already in the ledger is skipped, so
    importing the same statement twice is harmless. Bad rows are listed; the others go in.
    """
    from relance.db.session import session_scope
    from relance.ledger.transfers import import_transfers_csv

    with session_scope() as session:
        report = import_transfers_csv(
            session, csv_file.read_text(encoding="utf-8-sig"), recorded_by=f"cli:{recorded_by}"
        )
    console.print(
        f"recorded {len(report.recorded)}, already known {len(report.duplicates)}, "
        f"rejected {len(report.errors)}"
    )
    for line, why in report.errors:
        console.print(f"[red]line {line}: {why}[/red]")
    if report.errors:
        raise typer.Exit(code=1)
