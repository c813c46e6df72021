"""`relance user create EMAIL --role admin|collector --password-stdin`, and `list`, `passwd`,
`role`, `deactivate`, `activate`: console accounts.

Passwords are read from stdin (or prompted without echo), never from the command line, where
they would end up in the shell history and the process list.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

console = Console()
user_app = typer.Typer(no_args_is_help=True, help="Console users (collectors and admins).")


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first: str = typer.prompt("Password", hide_input=True)
    second: str = typer.prompt("Repeat password", hide_input=True)
    if first != second:
        console.print("[red]passwords differ[/red]")
        raise typer.Exit(code=2)
    return first


def _fail(message: str, code: int = 1) -> None:
    console.print(f"[red]{message}[/red]")
    raise typer.Exit(code=code)


@user_app.command("create")
def create(
    email: str = typer.Argument(..., help="Login e-mail"),
    role: str = typer.Option("collector", "--role", help="collector or admin"),
    name: str = typer.Option("", "--name", help="Display name (default: the e-mail's local part)"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from stdin"
    ),
) -> None:
    """Create a console user."""
    from relance.auth.users import create_user
    from relance.db.session import session_scope
    from relance.errors import RelanceError

    password = _read_password(password_stdin)
    try:
        with session_scope() as session:
            user = create_user(
                session, email, password, role=role, display_name=name or None, actor="cli"
            )
            summary = f"user {user.id} {user.email} ({user.role}) created"
    except RelanceError as exc:
        _fail(exc.message, code=2)
    console.print(summary)


def _change(email: str, change: str, value: object = None) -> str:
    from relance.auth import users
    from relance.db.session import session_scope
    from relance.errors import RelanceError

    try:
        with session_scope() as session:
            user = users.find_user(session, email)
            if user is None:
                _fail(f"no user {email}")
            assert user is not None
            if change == "password":
                users.set_password(session, user, str(value), actor="cli")
            elif change == "role":
                users.set_role(session, user, str(value), actor="cli")
            else:
                users.set_active(session, user, bool(value), actor="cli")
            return f"{user.email}: {change} updated"
    except RelanceError as exc:
        _fail(exc.message, code=2)
    return ""


@user_app.command("passwd")
def passwd(
    email: str = typer.Argument(...),
    password_stdin: bool = typer.Option(False, "--password-stdin"),
) -> None:
    """Set a new password (signs the user out everywhere)."""
    console.print(_change(email, "password", _read_password(password_stdin)))


@user_app.command("role")
def role(
    email: str = typer.Argument(...), new_role: str = typer.Argument(..., metavar="ROLE")
) -> None:
    """Change a user's role (collector or admin)."""
    console.print(_change(email, "role", new_role))


@user_app.command("deactivate")
def deactivate(email: str = typer.Argument(...)) -> None:
    """Block the account at once (its sessions end on the next request)."""
    console.print(_change(email, "active", False))


@user_app.command("activate")
def activate(email: str = typer.Argument(...)) -> None:
    console.print(_change(email, "active", True))


@user_app.command("list")
def list_users() -> None:
    from relance.auth.users import list_users as all_users
    from relance.db.session import session_scope

    table = Table("id", "email", "name", "role", "active")
    with session_scope() as session:
        for user in all_users(session):
            table.add_row(
                str(user.id),
                user.email,
                user.display_name,
                user.role,
                "yes" if user.active else "no",
            )
    console.print(table)
