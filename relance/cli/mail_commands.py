"""`relance mail poll`: read the replies mailbox (IMAP) once, as the worker does periodically."""

from __future__ import annotations

import typer
from rich.console import Console

console = Console()
mail_app = typer.Typer(no_args_is_help=True, help="The e-mail channel's replies mailbox.")


def register(app: typer.Typer) -> None:
    app.add_typer(mail_app, name="mail")


@mail_app.command("poll")
def poll() -> None:
    """Take the unseen messages of IMAP_FOLDER through the inbound e-mail path once.

    Each is handled exactly as a POST /mail/inbound (answered in its thread, or kept without an
    answer: bounce, automatic reply, opt-out) and flagged seen once stored; one that fails stays
    unseen for the next poll. Exits 1 when the mailbox cannot be read or a message failed.
    """
    from relance.conversations.ports import get_mailbox_poller
    from relance.errors import RelanceError
    from relance.settings import get_settings
    from relance.wiring import wire

    if not get_settings().imap_enabled:
        console.print("[red]IMAP_HOST is not set: there is no mailbox to poll[/red]")
        raise typer.Exit(code=1)
    wire()
    try:
        report = get_mailbox_poller().poll()
    except RelanceError as exc:
        console.print(f"[red]{exc.code}: {exc.message}[/red]", highlight=False)
        raise typer.Exit(code=1) from None
    outcomes = ", ".join(f"{status} {count}" for status, count in sorted(report.outcomes.items()))
    console.print(
        f"{report.mailbox}: {report.unseen} unseen, handled {sum(report.outcomes.values())}"
        f"{f' ({outcomes})' if outcomes else ''}, refused {len(report.rejected)}, "
        f"failed {len(report.failed)}, waiting for the next poll {report.waiting}",
        highlight=False,
    )
    for line in report.rejected:
        console.print(f"[yellow]refused (flagged for a person): {line}[/yellow]", highlight=False)
    for line in report.failed:
        console.print(f"[red]failed (left unseen): {line}[/red]", highlight=False)
    if report.failed:
        raise typer.Exit(code=1)
