"""Typer application: `relance run`, `relance import`, `relance migrate`, feature sub-commands."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Relance: conversational debt collection.")


def _register() -> None:
    """Plain imports: a command module that is missing or broken stops the CLI with its error."""
    from relance.cli import (
        accounting_commands,
        db_commands,
        dunning_commands,
        einvoice_commands,
        mail_commands,
        payments_commands,
        privacy_commands,
        stack_commands,
        token_commands,
        user_commands,
    )

    for commands in (
        db_commands,
        stack_commands,
        token_commands,
        payments_commands,
        user_commands,
        dunning_commands,
        privacy_commands,
        einvoice_commands,
        accounting_commands,
        mail_commands,
    ):
        commands.register(app)


_register()
