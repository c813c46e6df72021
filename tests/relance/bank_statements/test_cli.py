"""`relance payments import-statement FILE`: the report on success, each line's error and exit
code 1 on a refused file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy.orm import Session
from typer.testing import CliRunner

from relance.bank_statements import rf
from relance.cli.main import app
from tests.factories import make_debtor, make_invoice
from tests.relance.bank_statements.builders import Credit, camt053


def test_cli_imports_then_refuses_the_duplicate(db: Session, gateway, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 4500, due=date(2026, 10, 1))
    good = tmp_path / "statement.xml"
    good.write_bytes(
        camt053(
            [Credit("45.00", ref="CLI-S1", structured=rf.for_invoice(invoice.id))],
            statement_id="CLI-1",
        )
    )
    bad = tmp_path / "bad.xml"
    bad.write_bytes(
        camt053(
            [Credit("1.00"), Credit("1.00", currency="CHF"), Credit("1.00", currency="USD")],
            statement_id="CLI-2",
        )
    )

    ok = CliRunner().invoke(app, ["payments", "import-statement", str(good)])
    again = CliRunner().invoke(app, ["payments", "import-statement", str(good)])
    ko = CliRunner().invoke(app, ["payments", "import-statement", str(bad)])

    assert ok.exit_code == 0, ok.output
    assert "matched 1 (rf 1)" in ok.output and "invoices paid 1" in ok.output
    assert again.exit_code == 1 and "duplicate_statement" in again.output
    assert ko.exit_code == 1
    assert "line 2: CHF amount" in ko.output and "line 3: USD amount" in ko.output
    db.expire_all()
    assert invoice.status == "paid"
