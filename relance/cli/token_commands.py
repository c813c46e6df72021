"""`relance token create NAME` / `revoke ID` / `list`: bearer tokens for the JSON API.

The plaintext token is printed once, at creation; only its SHA-256 is stored, so a lost token is
revoked and replaced, never recovered.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

console = Console()
token_app = typer.Typer(no_args_is_help=True, help="API tokens for /api/v1.")


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")


@token_app.command("create")
def create(
    name: str = typer.Argument(..., help="Who uses it, e.g. 'erp-sync' (audited as api:<name>)"),
    user_email: str = typer.Option(
        "", "--user", help="Tie the token to this console user (admin-only routes need an admin)"
    ),
    read_only: bool = typer.Option(
        False, "--read-only", help="GET only: any other method is refused with 403 (reporting, BI)"
    ),
) -> None:
    """Create a token and print it once."""
    from relance.auth.tokens import create_token
    from relance.auth.users import find_user
    from relance.db.session import session_scope

    name = name.strip()
    if not name or len(name) > 76 or not name.isprintable():
        console.print("[red]NAME must be 1-76 printable characters[/red]")
        raise typer.Exit(code=2)
    with session_scope() as session:
        owner = find_user(session, user_email) if user_email else None
        if user_email and (owner is None or not owner.active):
            console.print(f"[red]no active user {user_email}[/red]")
            raise typer.Exit(code=2)
        row, plaintext = create_token(session, name, user=owner, read_only=read_only, actor="cli")
        token_id = row.id
    access = "read-only" if read_only else "read-write"
    console.print(f"{access} token {token_id} ({name}) created; it is shown only this once:")
    # plain print: no wrapping or markup, so the token can be copied or piped as is
    print(plaintext)


@token_app.command("revoke")
def revoke(token_id: int = typer.Argument(..., help="Token id, from `relance token list`")) -> None:
    """Revoke a token: requests using it get 401 from now on."""
    from relance.auth.tokens import revoke_token
    from relance.db.session import session_scope

    with session_scope() as session:
        revoked = revoke_token(session, token_id, actor="cli")
    if not revoked:
        console.print(f"[red]no live token with id {token_id}[/red]")
        raise typer.Exit(code=1)
    console.print(f"token {token_id} revoked")


@token_app.command("list")
def list_tokens() -> None:
    """Tokens with their status (never the token itself: it is not stored)."""
    from sqlalchemy import select

    from relance.db.models import ApiToken
    from relance.db.session import session_scope

    table = Table("id", "name", "access", "created", "revoked")
    with session_scope() as session:
        for row in session.scalars(select(ApiToken).order_by(ApiToken.id)):
            revoked = row.revoked_at.isoformat(timespec="seconds") if row.revoked_at else "-"
            table.add_row(
                str(row.id),
                row.name,
                "read-only" if row.read_only else "read-write",
                row.created_at.isoformat(timespec="seconds"),
                revoked,
            )
    console.print(table)
