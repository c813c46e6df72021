"""Importing a statement: matching rules, the ledger path a Stripe payment takes, all-or-nothing
refusals (unknown account, wrong currency, malformed file), duplicates never re-applied, and the
review queue."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance.bank_statements import rf, service
from relance.bank_statements.models import BankStatement, BankStatementEntry
from relance.db.models import AuditEvent, Payment
from relance.errors import Conflict, InvalidContent, NotFound
from tests.factories import make_debtor, make_invoice
from tests.relance.bank_statements.builders import ACCOUNT, Credit, camt053, mt940, swift_wrapped

DUE = date(2026, 10, 1)
_ids = itertools.count(1)


def _stmt_id() -> str:
    return f"S-{next(_ids)}"


def _import(db: Session, data: bytes) -> service.StatementReport:
    return service.import_statement(db, data, actor="test", filename="s.xml")


def _entries(db: Session, report: service.StatementReport) -> list[BankStatementEntry]:
    return list(
        db.scalars(
            select(BankStatementEntry)
            .where(BankStatementEntry.statement_id.in_(report.statement_ids))
            .order_by(BankStatementEntry.line_no)
        )
    )


def _count(db: Session, model: type) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_each_rule_matches_and_records_through_the_ledger(db: Session, gateway) -> None:
    by_rf, by_text_rf, by_number, by_name, by_total = (
        make_debtor(db, channels=("sms",)) for _ in range(5)
    )
    inv_rf = make_invoice(db, by_rf, 12050, due=DUE)
    inv_text = make_invoice(db, by_text_rf, 5000, due=DUE)
    inv_number = make_invoice(db, by_number, 7000, due=DUE)
    make_invoice(db, by_name, 1000, due=DUE)
    inv_name = make_invoice(db, by_name, 3000, due=DUE)
    total = [make_invoice(db, by_total, 1000, due=DUE), make_invoice(db, by_total, 2500, due=DUE)]
    data = camt053(
        [
            Credit("120.50", ref="R1", structured=rf.for_invoice(inv_rf.id)),
            Credit(
                "50.00",
                ref="R2",
                remittance=f"paiement {rf.printable(rf.for_invoice(inv_text.id))}",
            ),
            Credit("70.00", ref="R3", remittance=f"Facture {inv_number.number}, merci"),
            Credit(
                "30.00", ref="R4", payer=by_name.name.upper(), payer_iban="DE89370400440532013000"
            ),
            Credit("35.00", ref="R5", payer=by_total.name),
            Credit("9.99", ref="R6", payer="Someone Unknown", remittance="cadeau"),
            Credit("4.00", debit=True),
        ],
        statement_id=_stmt_id(),
    )
    report = _import(db, data)
    assert (report.lines, report.credits, report.matched, report.review) == (7, 6, 5, 1)
    assert report.by_rule == {"rf": 2, "invoice_number": 1, "amount_payer": 2}
    for invoice in (inv_rf, inv_text, inv_number, inv_name, *total):
        db.refresh(invoice)
        assert invoice.status == "paid", invoice.number
    entries = _entries(db, report)
    assert [e.status for e in entries] == ["matched"] * 5 + ["review"]
    assert entries[-1].reason == "no reference, invoice number or known payer"
    payment = db.get(Payment, entries[0].payment_id)
    assert payment is not None and payment.provider == "bank" and payment.method == "transfer"
    assert payment.received_at.date() == date(2026, 11, 20)
    # the Stripe path: audited, and the debtor thanked on their channel
    assert (
        db.scalar(
            select(func.count()).where(
                AuditEvent.action == "payment.recorded", AuditEvent.debtor_id == by_rf.id
            )
        )
        == 1
    )
    assert len(gateway.sent) == 5
    assert (
        db.scalars(select(AuditEvent).where(AuditEvent.action == "bank_statement.imported"))
        .all()[-1]
        .details["matched"]
        == 5
    )


def test_known_payer_iban_is_recognised_next_time(db: Session, gateway) -> None:
    debtor = make_debtor(db, channels=("sms",))
    first = make_invoice(db, debtor, 1000, due=DUE)
    second = make_invoice(db, debtor, 4200, due=DUE)
    iban = "DE89370400440532013000"
    _import(
        db,
        camt053(
            [
                Credit(
                    "10.00",
                    ref="I1",
                    payer="ACME",
                    payer_iban=iban,
                    structured=rf.for_invoice(first.id),
                )
            ],
            statement_id=_stmt_id(),
        ),
    )
    report = _import(
        db,
        camt053(
            [Credit("42.00", ref="I2", payer="Other name", payer_iban=iban)],
            statement_id=_stmt_id(),
        ),
    )
    assert report.by_rule == {"amount_payer": 1}
    db.refresh(second)
    assert second.status == "paid"


def test_ambiguous_paid_and_foreign_references_wait_for_review(db: Session, gateway) -> None:
    a, b = make_debtor(db, channels=("sms",)), make_debtor(db, channels=("sms",))
    inv_a = make_invoice(db, a, 1000, due=DUE)
    inv_b = make_invoice(db, b, 1000, due=DUE)
    paid = make_invoice(db, a, 500, due=DUE, status="paid", paid_minor=500)
    usd = make_invoice(db, b, 800, due=DUE, currency="USD")
    data = camt053(
        [
            Credit("10.00", ref="A1", remittance=f"{inv_a.number} {inv_b.number}"),
            Credit("5.00", ref="A2", structured=rf.for_invoice(paid.id)),
            Credit("8.00", ref="A3", remittance=usd.number),
            Credit("1.00", ref="A4", structured=rf.for_invoice(99_999_998)),
        ],
        statement_id=_stmt_id(),
    )
    report = _import(db, data)
    assert (report.matched, report.review) == (0, 4)
    reasons = [e.reason or "" for e in _entries(db, report)]
    assert "several debtors" in reasons[0]
    assert "already paid" in reasons[1]
    assert "paid in EUR" in reasons[2] and "USD" in reasons[2]
    assert "unknown invoice" in reasons[3]
    assert report.payment_ids == []


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (camt053([Credit("1.00")], account="DE89370400440532013000"), "unknown account DE89"),
        (camt053([Credit("1.00")], account="FR7630006000011234567890188"), "not a valid IBAN"),
        (camt053([Credit("1.00"), Credit("2.00", currency="USD")]), "line 2: USD amount on a EUR"),
        (camt053([Credit("1.00")])[:-40], "malformed XML"),
        (
            b"<?xml version='1.0'?><!DOCTYPE d [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><d>&e;</d>",
            "refused XML construct",
        ),
        (camt053([], currency="EURO"), "currency 'EURO' is not an ISO code"),
    ],
    ids=["unknown-account", "bad-iban", "wrong-currency", "malformed", "xxe", "bad-ccy"],
)
def test_bad_files_are_refused_whole(db: Session, gateway, data: bytes, fragment: str) -> None:
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 100, due=DUE)
    before = (_count(db, BankStatement), _count(db, BankStatementEntry), _count(db, Payment))
    with pytest.raises(InvalidContent) as refused:
        _import(db, data)
    assert refused.value.code == "invalid_statement"
    assert fragment in refused.value.message and "nothing was imported" in refused.value.message
    assert refused.value.details["errors"]
    after = (_count(db, BankStatement), _count(db, BankStatementEntry), _count(db, Payment))
    assert after == before
    db.refresh(invoice)
    assert invoice.status == "open"


def test_wrong_currency_refuses_the_good_lines_too(db: Session, gateway) -> None:
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 100, due=DUE)
    data = camt053(
        [
            Credit("1.00", ref="G1", structured=rf.for_invoice(invoice.id)),
            Credit("2.00", ref="G2", currency="GBP"),
        ],
        statement_id=_stmt_id(),
    )
    with pytest.raises(InvalidContent, match="line 2: GBP amount"):
        _import(db, data)
    db.refresh(invoice)
    assert invoice.status == "open" and _count(db, BankStatementEntry) == 0


def test_duplicate_statement_is_refused_and_nothing_reapplied(db: Session, gateway) -> None:
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 2000, due=DUE)
    statement_id = _stmt_id()
    credit = Credit("10.00", ref="D1", structured=rf.for_invoice(invoice.id))
    _import(db, camt053([credit], statement_id=statement_id))
    payments = _count(db, Payment)
    # the same file again
    with pytest.raises(Conflict, match="this file was imported") as same_file:
        _import(db, camt053([credit], statement_id=statement_id))
    assert same_file.value.code == "duplicate_statement"
    # the same statement id, another export of it (another file)
    with pytest.raises(Conflict, match=f"statement {statement_id} of account"):
        _import(db, camt053([credit, Credit("1.00", ref="D9")], statement_id=statement_id))
    # the same lines under another statement id
    with pytest.raises(Conflict, match="every credit of statement"):
        _import(db, camt053([credit], statement_id=_stmt_id()))
    assert _count(db, Payment) == payments
    db.refresh(invoice)
    assert invoice.paid_minor == 1000  # paid once, not twice


def test_overlapping_statement_skips_the_lines_already_in(db: Session, gateway) -> None:
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 3000, due=DUE)
    ref = rf.for_invoice(invoice.id)
    _import(db, camt053([Credit("10.00", ref="O1", structured=ref)], statement_id=_stmt_id()))
    report = _import(
        db,
        camt053(
            [Credit("10.00", ref="O1", structured=ref), Credit("20.00", ref="O2", structured=ref)],
            statement_id=_stmt_id(),
        ),
    )
    assert (report.already_imported, report.matched) == (1, 1)
    db.refresh(invoice)
    assert invoice.status == "paid" and invoice.paid_minor == 3000


def test_lines_without_bank_reference_are_told_apart(db: Session, gateway) -> None:
    """Two identical transfers on one day (no bank reference) are two payments, imported once."""
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 2000, due=DUE)
    same = Credit("10.00", structured=rf.for_invoice(invoice.id))
    report = _import(db, camt053([same, same], statement_id=_stmt_id()))
    assert report.matched == 2
    db.refresh(invoice)
    assert invoice.status == "paid"
    with pytest.raises(Conflict):
        _import(db, camt053([same, same], statement_id=_stmt_id()))


def test_mt940_is_imported_the_same_way(db: Session, gateway) -> None:
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 25000, due=DUE)
    data = mt940(
        [Credit("250.00", ref="M1", remittance=rf.for_invoice(invoice.id), payer="Jeanne Martin")],
        reference=_stmt_id(),
    )
    report = _import(db, data)
    assert report.by_rule == {"rf": 1}
    db.refresh(invoice)
    assert invoice.status == "paid"


def _review_entry(db: Session) -> BankStatementEntry:
    report = _import(
        db,
        camt053([Credit("15.00", ref=f"Q{next(_ids)}", payer="Nobody")], statement_id=_stmt_id()),
    )
    [entry] = _entries(db, report)
    assert entry.status == "review"
    return entry


def test_collector_assigns_a_line_to_a_debtor(db: Session, gateway) -> None:
    debtor = make_debtor(db, channels=("sms",))
    older = make_invoice(db, debtor, 1500, due=date(2026, 1, 1))
    named = make_invoice(db, debtor, 1500, due=DUE)
    entry = _review_entry(db)
    service.assign(
        db,
        entry.id,
        actor="user:a@example.com",
        invoice_number=named.number,
        note="called the payer",
    )
    db.refresh(named)
    db.refresh(older)
    assert named.status == "paid" and older.status == "open"
    assert (entry.status, entry.rule, entry.debtor_id) == ("assigned", "collector", debtor.id)
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "bank_line.assigned")).all()[
        -1
    ]
    assert event.actor == "user:a@example.com" and event.debtor_id == debtor.id
    with pytest.raises(Conflict, match="already assigned"):
        service.dismiss(db, entry.id, actor="user:a@example.com", note="oops")


def test_assign_refuses_what_does_not_fit(db: Session, gateway) -> None:
    a, b = make_debtor(db, channels=("sms",)), make_debtor(db, channels=("sms",))
    inv_b = make_invoice(db, b, 1500, due=DUE)
    usd = make_invoice(db, a, 1500, due=DUE, currency="USD")
    entry = _review_entry(db)
    with pytest.raises(InvalidContent, match="name the debtor"):
        service.assign(db, entry.id, actor="u")
    with pytest.raises(InvalidContent, match="no debtor"):
        service.assign(db, entry.id, actor="u", customer_number="NOPE")
    with pytest.raises(InvalidContent, match="is not customer"):
        service.assign(
            db, entry.id, actor="u", customer_number=a.customer_number, invoice_number=inv_b.number
        )
    with pytest.raises(InvalidContent, match="cannot pay invoice"):
        service.assign(db, entry.id, actor="u", invoice_number=usd.number)
    with pytest.raises(NotFound):
        service.assign(db, 2**31 - 1, actor="u", customer_number=a.customer_number)
    assert entry.status == "review" and entry.payment_id is None


def test_collector_dismisses_with_a_note(db: Session, gateway) -> None:
    entry = _review_entry(db)
    with pytest.raises(InvalidContent, match="say what this money is"):
        service.dismiss(db, entry.id, actor="u", note=" ")
    service.dismiss(db, entry.id, actor="user:b@example.com", note="internal transfer")
    assert (entry.status, entry.note, entry.payment_id) == ("dismissed", "internal transfer", None)
    assert db.scalars(select(AuditEvent).where(AuditEvent.action == "bank_line.dismissed")).all()
    assert entry not in service.list_review(db)
    assert entry in service.list_review(db, status="resolved")
    assert service.count_review(db).get("dismissed", 0) >= 1


def test_a_concurrent_duplicate_is_a_conflict_not_a_crash(
    db: Session, gateway, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Two requests pass the duplicate checks at the same time: the unique keys refuse the
    second, reported as the documented conflict."""
    data = camt053([Credit("3.00", ref="RACE-1", payer="Nobody")], statement_id=_stmt_id())
    _import(db, data)
    monkeypatch.setattr(service, "_refuse_duplicate", lambda *args: None)
    monkeypatch.setattr(service, "_known_keys", lambda *args: set())
    with pytest.raises(Conflict, match="at the same time") as race:
        _import(db, data)
    assert race.value.code == "duplicate_statement"
    db.rollback()


# --- MT940 files holding several statements ---------------------------------------------------

DAY1, DAY2 = date(2026, 11, 19), date(2026, 11, 20)
SWISS = "CH9300762011623852957"


def _day(
    day: date, reference: str, credits: list[Credit], opening: str = "0.00", **kw: str
) -> bytes:
    number = f"{day:%m%d}/001"
    booked = [replace(c, booked=day) for c in credits]
    return mt940(booked, reference=reference, number=number, opening=opening, day=day, **kw)


def _statements(db: Session) -> list[tuple[str, str, str, int]]:
    rows = db.scalars(select(BankStatement).order_by(BankStatement.id))
    return [(r.statement_ref, r.account_iban, r.currency, r.entry_count) for r in rows]


def test_a_two_day_mt940_file_is_two_statements_each_a_duplicate_next_time(
    db: Session, gateway
) -> None:
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 4000, due=DUE)
    paying = Credit("40.00", ref="TD-1", remittance=rf.for_invoice(invoice.id))
    day1 = _day(DAY1, "TD-A", [paying, Credit("2.00", debit=True)], opening="10.00")
    day2 = _day(DAY2, "TD-B", [Credit("7.00", ref="TD-2", payer="Nobody")], opening="48.00")
    report = _import(db, day1 + b"\r\n" + day2)

    assert (report.lines, report.credits, report.matched, report.review) == (3, 2, 1, 1)
    assert _statements(db) == [
        ("TD-A/1119/001/2026-11-19", ACCOUNT, "EUR", 2),
        ("TD-B/1120/001/2026-11-20", ACCOUNT, "EUR", 1),
    ]
    first, second = report.statement_ids
    entries = _entries(db, report)
    assert [(e.statement_id, e.bank_ref, e.line_no, e.booking_date) for e in entries] == [
        (first, "TD-1", 1, DAY1),
        (second, "TD-2", 3, DAY2),
    ]
    db.refresh(invoice)
    assert invoice.status == "paid"
    payments = _count(db, Payment)

    with pytest.raises(Conflict, match="this file was imported"):
        _import(db, day1 + b"\r\n" + day2)
    # another export of the same two days (LF line ends: another file), and each day on its own
    with pytest.raises(Conflict, match="statement TD-A/1119/001/2026-11-19 of account"):
        _import(db, (day1 + b"\r\n" + day2).replace(b"\r\n", b"\n"))
    with pytest.raises(Conflict, match="statement TD-A/1119/001/2026-11-19 of account"):
        _import(db, day1)
    with pytest.raises(Conflict, match="statement TD-B/1120/001/2026-11-20 of account"):
        _import(db, day2)
    assert _count(db, Payment) == payments and len(_statements(db)) == 2


def test_a_file_whose_first_day_was_imported_is_refused_naming_that_day(
    db: Session, gateway
) -> None:
    day1 = _day(DAY1, "FD-A", [Credit("5.00", ref="FD-1", payer="Nobody")])
    day2 = _day(DAY2, "FD-B", [Credit("6.00", ref="FD-2", payer="Nobody")], opening="5.00")
    _import(db, day1)
    with pytest.raises(
        Conflict, match=r"statement FD-A/1119/001/2026-11-19 of account .* nothing was re-applied"
    ):
        _import(db, day1 + b"\r\n" + day2)
    assert _statements(db) == [("FD-A/1119/001/2026-11-19", ACCOUNT, "EUR", 1)]
    assert [e.bank_ref for e in db.scalars(select(BankStatementEntry))] == ["FD-1"]


def test_statements_of_two_accounts_are_each_booked_on_their_account(
    db: Session, gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from relance.settings import get_settings

    monkeypatch.setenv("CREDITOR_IBANS", f"{ACCOUNT},{SWISS}")
    get_settings.cache_clear()
    eur = _day(DAY1, "TA-EUR", [Credit("5.00", ref="TA-1", payer="Nobody")])
    chf = _day(
        DAY1,
        "TA-CHF",
        [Credit("8.00", ref="TA-1", payer="Nobody", currency="CHF")],
        account=SWISS,
        currency="CHF",
    )
    report = _import(db, swift_wrapped(eur, session=1) + swift_wrapped(chf, session=2))
    assert _statements(db) == [
        ("TA-EUR/1119/001/2026-11-19", ACCOUNT, "EUR", 1),
        ("TA-CHF/1119/001/2026-11-19", SWISS, "CHF", 1),
    ]
    assert [(e.account_iban, e.currency, e.amount_minor) for e in _entries(db, report)] == [
        (ACCOUNT, "EUR", 500),
        (SWISS, "CHF", 800),
    ]


def test_a_statement_whose_balances_do_not_add_up_refuses_the_whole_file(
    db: Session, gateway
) -> None:
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 4000, due=DUE)
    day1 = _day(DAY1, "BB-A", [Credit("40.00", ref="BB-1", remittance=rf.for_invoice(invoice.id))])
    # day 2 lost a line on the way: its balances say 12.00 came in, its lines 7.00
    day2 = _day(DAY2, "BB-B", [Credit("7.00", ref="BB-2")], opening="40.00", closing="52.00")
    before = (_count(db, BankStatement), _count(db, BankStatementEntry), _count(db, Payment))
    with pytest.raises(InvalidContent) as refused:
        _import(db, day1 + b"\r\n" + day2)
    assert refused.value.code == "invalid_statement"
    assert refused.value.message == (
        "s.xml: statement BB-B/1120/001: the opening balance (:60F:) 40.00 EUR plus the credits "
        "7.00 minus the debits 0.00 gives 47.00 EUR, but the closing balance (:62F:) is 52.00 EUR; "
        "the statement is incomplete or altered; nothing was imported"
    )
    after = (_count(db, BankStatement), _count(db, BankStatementEntry), _count(db, Payment))
    assert after == before
    db.refresh(invoice)
    assert invoice.status == "open"


def test_one_statement_twice_in_a_file_is_refused_not_a_false_conflict(
    db: Session, gateway
) -> None:
    day = _day(DAY1, "TW-A", [Credit("5.00", ref="TW-1", payer="Nobody")])
    again = _day(DAY1, "TW-A", [Credit("6.00", ref="TW-2", payer="Nobody")])
    with pytest.raises(
        InvalidContent, match=r"statement TW-A/1119/001/2026-11-19 of account .* twice in the file"
    ):
        _import(db, day + b"\r\n" + again)
    assert _count(db, BankStatement) == 0


def test_an_unknown_currency_refuses_the_file(db: Session, gateway) -> None:
    data = camt053(
        [Credit("1.00", ref="UC-1", payer="Nobody", currency="XYZ")],
        currency="XYZ",
        statement_id=_stmt_id(),
    )
    with pytest.raises(InvalidContent, match="line 1: unknown currency 'XYZ'"):
        _import(db, data)
    assert _count(db, BankStatement) == 0


def test_a_bank_that_numbers_every_statement_alike_gets_each_day_booked(
    db: Session, gateway
) -> None:
    """Many banks write ":20:STARTUMS" and ":28C:00000" on every daily statement. The second
    day's file read as the first one imported again and was refused: its payments were never
    booked. The closing balance's date now tells the days apart; the same day sent again is
    still refused."""
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 4000, due=DUE)
    day1 = mt940(
        [Credit("15.00", ref="SU-1", payer="Nobody")],
        reference="STARTUMS",
        number="00000",
        day=DAY1,
    )
    paying = Credit("40.00", ref="SU-2", remittance=rf.for_invoice(invoice.id))
    day2 = mt940([paying], reference="STARTUMS", number="00000", opening="15.00", day=DAY2)
    _import(db, day1)
    report = _import(db, day2)
    assert report.matched == 1
    db.refresh(invoice)
    assert invoice.status == "paid"
    assert _statements(db) == [
        ("STARTUMS/00000/2026-11-19", ACCOUNT, "EUR", 1),
        ("STARTUMS/00000/2026-11-20", ACCOUNT, "EUR", 1),
    ]
    with pytest.raises(Conflict, match="statement STARTUMS/00000/2026-11-20 of account"):
        _import(db, day2.replace(b"\r\n", b"\n"))  # the same day, another export
