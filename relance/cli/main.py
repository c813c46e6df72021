"""Typer application: `relance run`, `relance import`, `relance migrate`, feature sub-commands."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Relance: conversational debt collection.")


def _register() -> None:
    from relance.cli import db_commands, stack_commands

    db_commands.register(app)
    stack_commands.register(app)
    __import__("relance.cli.token_commands", fromlist=["register"]).register(app)
    __import__("relance.cli.payments_commands", fromlist=["register"]).register(app)
    __import__("relance.cli.user_commands", fromlist=["register"]).register(app)
    __import__("relance.cli.dunning_commands", fromlist=["register"]).register(app)
    __import__("relance.cli.privacy_commands", fromlist=["register"]).register(app)


_register()
