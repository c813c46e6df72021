"""`relance einvoices import PATH...` and `relance accounting export`."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from relance.cli.main import app
from relance.db.models import Invoice
from tests.relance.einvoice.samples import Sample, facturx, ubl

runner = CliRunner()


def test_import_a_folder_reports_each_file_and_fails_on_a_rejected_one(
    db: Session, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.pdf").write_bytes(facturx(Sample(number="CLI-1")))
    (folder / "b.xml").write_bytes(ubl(Sample(number="CLI-2", issue="2026-02-30")))
    (folder / "notes.txt").write_text("not an invoice, skipped by suffix")
    result = runner.invoke(app, ["einvoices", "import", str(folder)], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "created" in result.output and "CLI-1" in result.output
    assert "issue date (BT-2): issue_date '2026-02-30' is not a date" in result.output
    assert "notes.txt" not in result.output
    assert [i.number for i in db.scalars(select(Invoice))] == ["CLI-1"]


def test_accounting_export_json_to_stdout(db: Session) -> None:
    result = runner.invoke(
        app,
        ["accounting", "export", "--from", "2026-10-01", "--to", "2026-11-01", "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["lines"] == []
