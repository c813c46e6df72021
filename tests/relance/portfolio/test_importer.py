from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance.db.models import AuditEvent, Contact, Debtor, Invoice
from relance.portfolio.demo import DEMO_CSV, demo_shift_days
from relance.portfolio.importer import import_rows, read_csv

HEADER = "customer_number,name,phone,invoice_number,amount,currency,issue_date,due_date,language,segment,whatsapp\n"


def _rows(*lines: str) -> list[dict[str, str | None]]:
    return read_csv(HEADER + "\n".join(lines) + "\n")


def test_valid_file_creates_debtors_invoices_and_contacts(db: Session) -> None:
    report = import_rows(
        db,
        _rows(
            "C1,Jean Dubois,06 39 98 11 11,F-1,120.50,EUR,2026-10-01,2026-10-31,fr,consumer,",
            "C1,Jean Dubois,06 39 98 11 11,F-2,80,EUR,2026-10-05,2026-11-04,fr,consumer,",
            "C2,Acme Ltd,+447700900111,F-3,1000.00,GBP,2026-10-01,2026-10-31,en,b2b,+447700900111",
        ),
    )
    assert report.ok and report.debtors_created == 2 and report.invoices_created == 3
    invoice = db.scalars(select(Invoice).where(Invoice.number == "F-1")).one()
    assert invoice.amount_minor == 12050 and invoice.currency == "EUR"
    acme = db.scalars(select(Debtor).where(Debtor.customer_number == "C2")).one()
    assert {(c.channel, c.address) for c in acme.contacts} == {
        ("sms", "+447700900111"),
        ("voice", "+447700900111"),
        ("whatsapp", "whatsapp:+447700900111"),
    }
    jean = db.scalars(select(Debtor).where(Debtor.customer_number == "C1")).one()
    assert jean.contacts[0].address == "+33639981111"  # national format normalised to E.164
    assert (
        db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "portfolio.imported")
        )
        == 1
    )


def test_any_bad_row_imports_nothing_and_reports_every_problem(db: Session) -> None:
    report = import_rows(
        db,
        _rows(
            "C1,Jean,06 39 98 11 11,F-1,120.50,EUR,2026-10-01,2026-10-31,fr,consumer,",
            "C2,Marie,not-a-phone,F-2,-5,EURO,2026-13-01,2026-10-31,de,vip,",
            "C3,Paul,06 39 98 22 22,F-1,10,EUR,2026-10-01,2026-09-01,fr,consumer,",
        ),
    )
    assert not report.ok
    assert set(report.errors) == {3, 4}
    problems = " | ".join(report.errors[3])
    for expected in ("phone", "amount", "currency", "issue_date", "language", "segment"):
        assert expected in problems
    assert any("repeated" in p for p in report.errors[4])
    assert any("before issue_date" in p for p in report.errors[4])
    assert db.scalar(select(func.count()).select_from(Invoice)) == 0
    assert db.scalar(select(func.count()).select_from(Contact)) == 0


def test_reimport_is_harmless_but_changed_figures_are_refused(db: Session) -> None:
    line = "C1,Jean,06 39 98 11 11,F-1,120.50,EUR,2026-10-01,2026-10-31,fr,consumer,"
    assert import_rows(db, _rows(line)).ok
    again = import_rows(db, _rows(line))
    assert again.ok and again.invoices_unchanged == 1 and again.invoices_created == 0
    changed = import_rows(db, _rows(line.replace("120.50", "999.00")))
    assert not changed.ok and "different figures" in changed.errors[2][0]


def test_a_row_for_an_invoice_imported_as_instalments_is_refused(db: Session) -> None:
    """Its e-invoice made one invoice per instalment: a CSV row of the whole invoice would claim
    the same money twice, all of it from one date."""
    from tests.factories import make_debtor, make_invoice

    debtor = make_debtor(db, customer_number="C1")
    make_invoice(db, debtor, number="F-9 (1/2)", instalment_of="F-9", instalment_no=1)
    report = import_rows(
        db, _rows("C1,Jean Dubois,06 39 98 11 11,F-9,120.50,EUR,2026-10-01,2026-10-31,fr,consumer,")
    )
    assert not report.ok
    assert "F-9 is payable in instalments" in report.errors[2][0]
    assert db.scalars(select(Invoice).where(Invoice.number == "F-9")).first() is None


def test_one_phone_cannot_belong_to_two_customers(db: Session) -> None:
    report = import_rows(
        db,
        _rows(
            "C1,Jean,06 39 98 11 11,F-1,10,EUR,2026-10-01,2026-10-31,fr,consumer,",
            "C2,Marie,+33639981111,F-2,10,EUR,2026-10-01,2026-10-31,fr,consumer,",
        ),
    )
    assert not report.ok and "already belongs to customer C1" in report.errors[3][0]


def test_bundled_demo_portfolio_is_valid_and_varied(db: Session) -> None:
    today = date(2027, 1, 10)
    report = import_rows(
        db, read_csv(DEMO_CSV.read_text(encoding="utf-8")), date_shift_days=demo_shift_days(today)
    )
    assert report.ok, report.errors
    assert 25 <= report.debtors_created <= 40
    languages = set(db.scalars(select(Debtor.language)))
    segments = set(db.scalars(select(Debtor.segment)))
    assert languages == {"fr", "en"} and segments == {"b2b", "consumer"}
    days_late = [(today - d).days for d in db.scalars(select(Invoice.due_date))]
    assert min(days_late) < 0 and max(days_late) >= 45  # pre-due up to formal-notice stages


def test_unusable_numbers_widths_and_control_characters_are_row_errors(db: Session) -> None:
    report = import_rows(
        db,
        _rows(
            "C1,Jean,06 39 98 11 11,F-1,NaN,EUR,2026-10-01,2026-10-31,fr,consumer,",
            "C2,Marie,06 39 98 11 12,F-2,Infinity,EUR,2026-10-01,2026-10-31,fr,consumer,",
            "C3,Paul,06 39 98 11 13,F-3,1e30,EUR,2026-10-01,2026-10-31,fr,consumer,",
            f"C4,{'x' * 201},06 39 98 11 14,F-4,10,EUR,2026-10-01,2026-10-31,fr,consumer,",
            "C5,Nul\x00,06 39 98 11 15,F-5,10,EUR,2026-10-01,2026-10-31,fr,consumer,",
        ),
    )
    assert set(report.errors) == {2, 3, 4, 5, 6}
    assert "usable amount" in report.errors[2][0] and "usable amount" in report.errors[4][0]
    assert "longer than 200" in report.errors[5][0]
    assert "control characters" in report.errors[6][0]
    assert db.scalar(select(func.count()).select_from(Invoice)) == 0


def test_sequential_customer_numbers_are_flagged_when_they_are_the_identity_secret(
    db: Session, monkeypatch
) -> None:
    """Issue 17.1: C-FR-001 … C-FR-177 let one SMS guess every debtor's customer number."""
    from relance.portfolio.importer import sequential_neighbours
    from relance.settings import get_settings

    assert sequential_neighbours(["C-FR-009", "C-FR-010", "C-FR-012-7315", "C-FR-013-0042"]) == [
        ("C-FR-009", "C-FR-010")
    ]
    rows = _rows(
        "C-FR-001,Jean Dubois,06 39 98 21 01,F-S1,10,EUR,2026-10-01,2026-10-31,fr,consumer,",
        "C-FR-002,Anne Dubois,06 39 98 21 02,F-S2,10,EUR,2026-10-01,2026-10-31,fr,consumer,",
    )
    monkeypatch.setenv("IDENTITY_CHECK", "customer_number")
    get_settings.cache_clear()
    report = import_rows(db, rows)
    assert report.ok and report.debtors_created == 2  # imported, with a warning
    assert len(report.warnings) == 1 and "C-FR-001 and C-FR-002" in report.warnings[0]
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "portfolio.imported")).one()
    assert event.details["warnings"] == report.warnings


def test_the_demo_portfolio_customer_numbers_are_not_sequential(db: Session, monkeypatch) -> None:
    from relance.settings import get_settings

    monkeypatch.setenv("IDENTITY_CHECK", "customer_number")
    get_settings.cache_clear()
    report = import_rows(
        db,
        read_csv(DEMO_CSV.read_text(encoding="utf-8")),
        date_shift_days=demo_shift_days(date.today()),
    )
    assert report.ok and report.warnings == []


def test_postcode_check_does_not_warn_about_customer_numbers(db: Session) -> None:
    report = import_rows(
        db,
        _rows(
            "C-7,Jean Dubois,06 39 98 21 07,F-P1,10,EUR,2026-10-01,2026-10-31,fr,consumer,",
            "C-8,Anne Dubois,06 39 98 21 08,F-P2,10,EUR,2026-10-01,2026-10-31,fr,consumer,",
        ),
    )
    assert report.ok and report.warnings == []


def test_stored_phones_are_checked_in_batches_and_reported_on_their_line(db: Session) -> None:
    """More phones than one IN (...) query holds: every stored one is found, only the row that
    gives a stored phone to another customer is refused, and re-importing the owners is fine."""
    lines = [
        f"C{n},Client {n},+3363{n:07d},F-{n},10,EUR,2026-10-01,2026-10-31,fr,consumer,"
        for n in range(1200)
    ]
    assert import_rows(db, _rows(*lines)).ok
    taken = "C-NEW,Intrus,+33630001100,F-NEW,10,EUR,2026-10-01,2026-10-31,fr,consumer,"
    report = import_rows(db, _rows(*lines, taken))
    assert report.errors == {1202: ["phone +33630001100 already belongs to customer C1100"]}
    assert import_rows(db, _rows(*lines)).invoices_unchanged == 1200


def test_an_email_cannot_belong_to_two_customers(db: Session) -> None:
    """The contacts table holds each address once: a second customer giving the same e-mail was
    an IntegrityError that failed the whole import (a 500 on the API) instead of a row error."""
    header = "customer_number,name,phone,invoice_number,amount,currency,issue_date,due_date,email\n"
    rows = read_csv(
        header
        + "C1,Jean,06 39 98 11 11,F-1,10,EUR,2026-10-01,2026-10-31,compta@dubois.example\n"
        + "C1,Jean,06 39 98 11 11,F-2,10,EUR,2026-10-01,2026-10-31,compta@dubois.example\n"
        + "C2,Marie,06 39 98 11 12,F-3,10,EUR,2026-10-01,2026-10-31,Compta@Dubois.example\n"
    )
    report = import_rows(db, rows)
    assert report.errors == {4: ["email compta@dubois.example already belongs to customer C1"]}
    assert db.scalar(select(func.count()).select_from(Contact)) == 0
    assert import_rows(db, rows[:2]).ok
    stored = import_rows(db, rows[2:])
    assert stored.errors == {2: ["email compta@dubois.example already belongs to customer C1"]}


def _statements(db: Session, lines: list[str]) -> int:
    from sqlalchemy import event

    count = 0

    def counted(*_args: object) -> None:
        nonlocal count
        count += 1

    connection = db.connection()
    event.listen(connection, "before_cursor_execute", counted)
    try:
        assert import_rows(db, _rows(*lines)).ok
    finally:
        event.remove(connection, "before_cursor_execute", counted)
    return count


@pytest.mark.parametrize("debtors", [120, 600])
def test_statements_do_not_grow_with_the_rows(db: Session, debtors: int) -> None:
    """The import reads and writes per chunk of 500 rows, never per row or per debtor (it took
    two statements per row, ten per new debtor): a first import of 2 invoices per debtor, then
    the same file again (every invoice unchanged, every debtor found)."""
    lines = [
        f"C{n // 2},Client {n // 2},+3363{n // 2:07d},F-{n},10,EUR,2026-10-01,2026-10-31,fr,consumer,"
        for n in range(2 * debtors)
    ]
    first = _statements(db, lines)
    again = _statements(db, lines)
    chunks = -(-len(lines) // 500)
    # per chunk: phones, known invoices, debtors (+ their contacts), INSERT debtors, contacts,
    # invoices; then the audit row
    assert first <= 8 * chunks + 2, first
    assert again <= 8 * chunks + 2, again
