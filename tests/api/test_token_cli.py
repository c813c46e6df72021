"""`relance token create NAME` prints a working token once; `revoke ID` makes it a 401."""

from __future__ import annotations

import typer
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from relance.cli import token_commands
from relance.db.models import ApiToken, AuditEvent


def cli() -> typer.Typer:
    app = typer.Typer()
    token_commands.register(app)
    return app


def test_create_prints_a_token_that_works_then_revoke_kills_it(
    client: TestClient, db: Session
) -> None:
    runner = CliRunner()
    created = runner.invoke(cli(), ["token", "create", "erp-sync"])
    assert created.exit_code == 0, created.output
    plaintext = created.output.strip().splitlines()[-1]
    row = db.scalars(select(ApiToken).where(ApiToken.name == "erp-sync")).one()
    assert plaintext not in row.token_hash
    headers = {"Authorization": f"Bearer {plaintext}"}
    assert client.get("/api/v1/debtors", headers=headers).status_code == 200

    revoked = runner.invoke(cli(), ["token", "revoke", str(row.id)])
    assert revoked.exit_code == 0, revoked.output
    assert client.get("/api/v1/debtors", headers=headers).status_code == 401
    actions = db.scalars(select(AuditEvent.action).where(AuditEvent.actor == "cli")).all()
    assert {"api_token.created", "api_token.revoked"} <= set(actions)

    listing = runner.invoke(cli(), ["token", "list"])
    assert "erp-sync" in listing.output and plaintext not in listing.output


def test_revoking_an_unknown_token_fails(db: Session) -> None:
    result = CliRunner().invoke(cli(), ["token", "revoke", "999999"])
    assert result.exit_code == 1


def test_blank_names_are_refused(db: Session) -> None:
    result = CliRunner().invoke(cli(), ["token", "create", "  "])
    assert result.exit_code == 2
    assert db.scalars(select(ApiToken)).all() == []


def test_read_only_tokens_are_created_listed_and_audited_as_such(db: Session) -> None:
    runner = CliRunner()
    created = runner.invoke(cli(), ["token", "create", "bi", "--read-only"])
    assert created.exit_code == 0, created.output
    assert "read-only token" in created.output
    row = db.scalars(select(ApiToken).where(ApiToken.name == "bi")).one()
    assert row.read_only is True
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "api_token.created")).one()
    assert event.details.get("read_only") is True
    listing = runner.invoke(cli(), ["token", "list"])
    assert "read-only" in listing.output
