"""`relance plan --dry-run`, `relance timeline`, `relance letters render`, `relance evidence`."""

from __future__ import annotations

import zipfile
from datetime import timedelta
from pathlib import Path

from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from relance.cli.main import app
from relance.db.base import utcnow
from relance.db.models import DunningAction
from tests.factories import make_debtor, make_invoice

runner = CliRunner()


@freeze_time("2026-11-23 10:00:00")
def test_plan_dry_run_lists_contacts_and_writes_nothing(db: Session) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    result = runner.invoke(app, ["plan", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "(dry" in result.output and "friendly" in result.output
    assert invoice.number in result.output
    assert db.scalars(select(DunningAction)).first() is None


@freeze_time("2026-11-23 10:00:00")
def test_plan_writes_actions(db: Session) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    result = runner.invoke(app, ["plan"])
    assert result.exit_code == 0, result.output
    assert db.scalars(select(DunningAction)).first() is not None


@freeze_time("2026-11-23 10:00:00")
def test_timeline_of_one_debtor(db: Session) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=utcnow().date() + timedelta(days=5), number="TL-1")
    result = runner.invoke(app, ["timeline", debtor.customer_number], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "friendly" in result.output and "TL-1" in result.output
    assert runner.invoke(app, ["timeline", "nobody"]).exit_code == 1


@freeze_time("2026-11-23 10:00:00")
def test_letters_render_and_evidence(db: Session, tmp_path: Path) -> None:
    debtor = make_debtor(db, segment="b2b", channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=35))
    pdf = tmp_path / "letter.pdf"
    result = runner.invoke(
        app,
        [
            "letters",
            "render",
            "--debtor",
            str(debtor.id),
            "--out",
            str(pdf),
            "--payment-url",
            "https://p.test/x",
        ],
    )
    assert result.exit_code == 0, result.output
    assert pdf.read_bytes().startswith(b"%PDF")
    pack = tmp_path / "pack.zip"
    result = runner.invoke(app, ["evidence", str(debtor.id), "--out", str(pack)])
    assert result.exit_code == 0, result.output
    assert "manifest.json" in zipfile.ZipFile(pack).namelist()


@freeze_time("2026-11-23 10:00:00")
def test_queueing_a_second_letter_for_the_same_invoices_is_a_clear_error(
    db: Session, tmp_path: Path
) -> None:
    debtor = make_debtor(db, segment="b2b", channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=35))
    args = [
        "letters",
        "render",
        "--debtor",
        str(debtor.id),
        "--queue",
        "--out",
        str(tmp_path / "l.pdf"),
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert second.exit_code == 1 and second.exception is not None
    assert "already in a queued or posted letter" in second.output
    assert "Traceback" not in second.output
