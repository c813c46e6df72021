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


@payments_app.command("import-statement")
def import_statement(
    statement_file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="camt.053 (XML) or MT940 bank statement"
    ),
    recorded_by: str = typer.Option("cli", help="Who imports it (kept in the audit trail)"),
) -> None:
    """Reconcile a bank statement: credits matched to invoices are recorded as payments (dunning
    stops), the rest waits in the console's "Payments to review". All or nothing: a bad line, a
    wrong currency, an unknown account or a statement imported before changes nothing.
    """
    from relance.bank_statements.service import import_statement as run_import
    from relance.db.session import session_scope
    from relance.errors import RelanceError

    try:
        with session_scope() as session:
            report = run_import(
                session,
                statement_file.read_bytes(),
                actor=f"cli:{recorded_by}",
                filename=statement_file.name,
            )
    except RelanceError as exc:
        console.print(f"[red]{exc.code}: {exc.message}[/red]")
        for problem in exc.details.get("errors", [])[1:]:
            console.print(f"[red]  line {problem['line']}: {problem['error']}[/red]")
        raise typer.Exit(code=1) from None
    rules = ", ".join(f"{rule} {count}" for rule, count in sorted(report.by_rule.items()))
    console.print(
        f"{report.lines} lines, {report.credits} credits: matched {report.matched}"
        f"{f' ({rules})' if rules else ''}, to review {report.review}, "
        f"already imported {report.already_imported}"
    )
    console.print(f"invoices paid {len(report.paid_invoice_ids)}")
