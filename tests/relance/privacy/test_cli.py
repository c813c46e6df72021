"""`relance debtor export|erase`, `relance retention run --dry-run`, `relance token create --user`."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from relance.cli.main import app
from relance.db.models import ApiToken, AuditEvent, Message
from relance.settings import Settings
from tests.factories import make_user
from tests.relance.privacy.helpers import occurrences, seed_debtor

runner = CliRunner()


def test_export_writes_the_zip(db: Session, tmp_path: Path) -> None:
    seeded = seed_debtor(db, tmp_path)
    out = tmp_path / "out" / "export.zip"
    result = runner.invoke(
        app, ["debtor", "export", seeded.debtor.customer_number, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(zipfile.ZipFile(out).read("export.json"))
    assert document["tables"]["debtors"][0]["name"] == seeded.name
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "privacy.exported")).one()
    assert event.actor.startswith("cli:")


def test_export_unknown_debtor_is_a_clear_error(db: Session, tmp_path: Path) -> None:
    result = runner.invoke(app, ["debtor", "export", "NOPE-42", "--out", str(tmp_path / "x.zip")])
    assert result.exit_code == 1 and "NOPE-42" in result.output
    assert not (tmp_path / "x.zip").exists()


def test_erase_refused_then_forced(db: Session, tmp_path: Path) -> None:
    seeded = seed_debtor(db, tmp_path, settled=False)
    ref = seeded.debtor.customer_number
    refused = runner.invoke(app, ["debtor", "erase", ref, "--reason", "request", "--yes"])
    assert refused.exit_code == 1
    assert "refused" in refused.output and "open balance" in refused.output
    db.expire_all()
    assert occurrences(db, [seeded.name])
    done = runner.invoke(
        app, ["debtor", "erase", ref, "--reason", "court order", "--force", "--yes"]
    )
    assert done.exit_code == 0, done.output
    assert "erased (forced past" in done.output and "contacts_opted_out: 2" in done.output
    db.expire_all()
    assert occurrences(db, seeded.needles) == {}


def test_erase_asks_for_confirmation(db: Session, tmp_path: Path) -> None:
    seeded = seed_debtor(db, tmp_path)
    result = runner.invoke(
        app, ["debtor", "erase", seeded.debtor.customer_number, "--reason", "request"], input="n\n"
    )
    assert result.exit_code == 1
    db.expire_all()
    assert occurrences(db, [seeded.name])


def test_retention_dry_run(db: Session, settings: Settings, tmp_path: Path) -> None:
    seeded = seed_debtor(db, tmp_path, old=True)
    result = runner.invoke(app, ["retention", "run", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "would purge 3 message(s) of 1 debtor(s)" in result.output
    assert str(seeded.debtor.id) in result.output
    db.expire_all()
    assert seeded.text in db.scalars(select(Message.body)).all()
    result = runner.invoke(app, ["retention", "run"])
    assert result.exit_code == 0 and "purged 3 message(s)" in result.output
    db.expire_all()
    assert seeded.text not in db.scalars(select(Message.body)).all()


def test_token_for_a_user(db: Session) -> None:
    admin = make_user(db, "admin")
    result = runner.invoke(app, ["token", "create", "privacy-ops", "--user", admin.email])
    assert result.exit_code == 0, result.output
    row = db.scalars(select(ApiToken).where(ApiToken.name == "privacy-ops")).one()
    assert row.user_id == admin.id
    missing = runner.invoke(app, ["token", "create", "x", "--user", "nobody@example.test"])
    assert missing.exit_code == 2 and "no active user" in missing.output
