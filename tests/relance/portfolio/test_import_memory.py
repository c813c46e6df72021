"""The CSV import holds one chunk of rows, not the file: its peak memory barely grows with the
file, and the file is still all-or-nothing when the problem sits in a later chunk."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from relance.cli.main import app
from relance.db.models import Debtor, Invoice
from relance.portfolio.importer import CHUNK, import_rows

PER_DEBTOR = 4


def _rows(
    count: int, prefix: str, phones: int, bad_line: int | None = None
) -> Iterator[dict[str, str | None]]:
    """`count` rows made one at a time (a list would be the very memory this measures);
    `phones` (one digit) keeps each call's phone numbers its own."""
    for n in range(count):
        d = n // PER_DEBTOR
        yield {
            "customer_number": f"{prefix}-C{d:06d}",
            "name": f"Client {d}",
            "phone": f"+336{phones}{d:07d}",
            "invoice_number": f"{prefix}-F{n:07d}",
            "amount": "not money" if n + 2 == bad_line else f"{100 + n % 900}.{n % 100:02d}",
            "currency": "EUR",
            "issue_date": "2026-10-01",
            "due_date": "2026-10-31",
            "description": "Prestations de services, octobre 2026, conditions générales" * 2,
        }


def _count(db: Session, model: type) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def _peak(db: Session, count: int, prefix: str, phones: int) -> int:
    tracemalloc.start()
    try:
        report = import_rows(db, _rows(count, prefix, phones))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.ok, report.errors
    assert report.invoices_created == count
    return peak


def test_peak_memory_is_bounded_by_the_chunk_not_the_file(db: Session) -> None:
    # What the first import allocates once (compiled statements, caches) is not the file's.
    assert import_rows(db, _rows(CHUNK + 100, "MW", 5)).ok
    small = _peak(db, 1_000, "MS", phones=1)
    large = _peak(db, 8_000, "ML", phones=2)
    # Holding the rows (as before) cost ~1,150 bytes per row (1,000 rows 2.0 MB, 8,000 rows
    # 10.1 MB). What still grows is a few keys per row (invoice number and its first line, a
    # digest per customer, its addresses): ~200 bytes (1.5 MB and 2.9 MB).
    per_row = (large - small) / 7_000
    assert per_row < 400, (small, large)


def test_a_problem_in_a_later_chunk_leaves_nothing_written(db: Session) -> None:
    bad_line = 3 * CHUNK + 10  # the first three chunks were already written when it is read
    before = (_count(db, Debtor), _count(db, Invoice))
    report = import_rows(db, _rows(4 * CHUNK, "MB", 3, bad_line=bad_line))
    assert not report.ok
    assert list(report.errors) == [bad_line]
    assert "amount" in report.errors[bad_line][0]
    assert (report.debtors_created, report.invoices_created) == (0, 0)
    assert (_count(db, Debtor), _count(db, Invoice)) == before


def test_a_repeat_across_chunks_is_reported_with_its_first_line(db: Session) -> None:
    rows = list(_rows(CHUNK + 1, "MR", 4))
    rows[-1] = dict(rows[-1], invoice_number=rows[0]["invoice_number"])
    report = import_rows(db, iter(rows))
    assert report.errors == {
        CHUNK + 2: [f"invoice {rows[0]['invoice_number']} is repeated (first on line 2)"]
    }
    assert db.scalar(select(Invoice.id).where(Invoice.number.like("MR-%"))) is None


def test_the_cli_streams_the_file_and_refuses_a_bad_one_whole(db: Session, tmp_path: Path) -> None:
    header = "customer_number,name,phone,invoice_number,amount,currency,issue_date,due_date\n"
    good = tmp_path / "good.csv"
    good.write_text(
        "\ufeff"
        + header
        + "CLI-C1,Jean Dubois,06 39 98 12 12,CLI-F1,120.50,EUR,2026-10-01,2026-10-31\n"
        + "CLI-C1,Jean Dubois,06 39 98 12 12,CLI-F2,80,EUR,2026-10-05,2026-11-04\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["import", str(good)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "2 rows" in result.output and "1 debtors and 2 invoices created" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text(
        header
        + "CLI-C2,Anne Roy,06 39 98 13 13,CLI-F3,10,EUR,2026-10-01,2026-10-31\n"
        + "CLI-C2,Anne Roy,06 39 98 13 13,CLI-F4,ten,EUR,2026-10-01,2026-10-31\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["import", str(bad)], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "Nothing was imported" in result.output
    numbers = set(db.scalars(select(Invoice.number).where(Invoice.number.like("CLI-F%"))))
    assert numbers == {"CLI-F1", "CLI-F2"}


runner = CliRunner()
