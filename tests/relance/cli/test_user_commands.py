"""`relance user …`: accounts from the command line, passwords from stdin only."""

from __future__ import annotations

from sqlalchemy.orm import Session
from typer.testing import CliRunner

from relance.auth.passwords import verify_password
from relance.auth.users import find_user
from relance.cli.main import app

runner = CliRunner()


def test_create_user_with_password_from_stdin(db: Session) -> None:
    result = runner.invoke(
        app,
        ["user", "create", "Boss@Example.test", "--role", "admin", "--password-stdin"],
        input="a long admin password\n",
    )
    assert result.exit_code == 0, result.output
    assert "created" in result.output
    user = find_user(db, "boss@example.test")
    assert user is not None and user.role == "admin"
    assert verify_password(user.password_hash, "a long admin password")


def test_create_refuses_weak_password_and_bad_role(db: Session) -> None:
    weak = runner.invoke(
        app, ["user", "create", "w@example.test", "--password-stdin"], input="short\n"
    )
    assert weak.exit_code == 2 and "at least" in weak.output
    role = runner.invoke(
        app,
        ["user", "create", "r@example.test", "--role", "root", "--password-stdin"],
        input="a long enough password\n",
    )
    assert role.exit_code == 2 and "role must be" in role.output
    assert find_user(db, "w@example.test") is None and find_user(db, "r@example.test") is None


def test_passwd_role_deactivate_and_list(db: Session) -> None:
    runner.invoke(
        app, ["user", "create", "c@example.test", "--password-stdin"], input="first long password\n"
    )
    assert (
        runner.invoke(
            app,
            ["user", "passwd", "c@example.test", "--password-stdin"],
            input="second long password\n",
        ).exit_code
        == 0
    )
    assert runner.invoke(app, ["user", "role", "c@example.test", "admin"]).exit_code == 0
    assert runner.invoke(app, ["user", "deactivate", "c@example.test"]).exit_code == 0
    user = find_user(db, "c@example.test")
    assert user is not None
    db.refresh(user)
    assert verify_password(user.password_hash, "second long password")
    assert user.role == "admin" and not user.active
    listing = runner.invoke(app, ["user", "list"])
    assert "c@example.test" in listing.output
    missing = runner.invoke(app, ["user", "deactivate", "ghost@example.test"])
    assert missing.exit_code == 1 and "no user" in missing.output
