"""camt.053 and MT940 reading: fields, versions, batch bookings, MT940 files of several
statements and their balances, and hostile or broken files."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest

from relance.bank_statements.parsers import Statement, StatementError, detect_and_parse, to_minor
from tests.relance.bank_statements.builders import (
    ACCOUNT,
    Credit,
    camt053,
    mt940,
    swift_wrapped,
)


def test_camt053_lines_carry_what_matching_needs() -> None:
    data = camt053(
        [
            Credit(
                "120.50",
                ref="BANK-1",
                remittance="Facture F-1",
                payer="ACME SA",
                payer_iban="DE89370400440532013000",
                structured="RF18539007547034",
            ),
            Credit("10", debit=True),
        ]
    )
    [statement] = detect_and_parse(data, max_lines=10)
    assert (statement.format, statement.statement_ref, statement.account_iban) == (
        "camt.053",
        "STMT-2026-11-20",
        ACCOUNT,
    )
    assert statement.currency == "EUR"
    credit, debit = statement.lines
    assert (credit.amount_minor, credit.credit, credit.bank_ref) == (12050, True, "BANK-1")
    assert credit.payer_name == "ACME SA" and credit.payer_iban == "DE89370400440532013000"
    assert credit.reference == "RF18539007547034" and credit.remittance == "Facture F-1"
    assert credit.booking_date == date(2026, 11, 20)
    assert (debit.credit, debit.amount_minor) == (False, 1000)


def test_camt053_version_08_party_names_are_read() -> None:
    data = camt053([Credit("5.00", payer="X")], version="08").replace(
        b"<Dbtr><Nm>X</Nm></Dbtr>", b"<Dbtr><Pty><Nm>Jeanne Martin</Nm></Pty></Dbtr>"
    )
    [statement] = detect_and_parse(data, max_lines=10)
    assert statement.lines[0].payer_name == "Jeanne Martin"


def test_batch_booking_gives_one_line_per_transfer() -> None:
    one = camt053([Credit("30.00", ref="B")])
    tx = (
        b'<TxDtls><Refs><AcctSvcrRef>T%d</AcctSvcrRef></Refs><Amt Ccy="EUR">%s</Amt>'
        b"<RmtInf><Ustrd>part %d</Ustrd></RmtInf></TxDtls>"
    )
    details = b"<NtryDtls>" + tx % (1, b"10.00", 1) + tx % (2, b"20.00", 2) + b"</NtryDtls>"
    start, end = one.index(b"<NtryDtls>"), one.index(b"</NtryDtls>") + len(b"</NtryDtls>")
    [statement] = detect_and_parse(one[:start] + details + one[end:], max_lines=10)
    assert [(x.amount_minor, x.bank_ref, x.remittance) for x in statement.lines] == [
        (1000, "T1", "part 1"),
        (2000, "T2", "part 2"),
    ]


def test_mt940_lines_carry_payer_and_remittance() -> None:
    data = mt940(
        [
            Credit(
                "250.00",
                ref="B77",
                remittance="RF18539007547034 thanks",
                payer="Jeanne Martin",
                payer_iban="DE89370400440532013000",
            )
        ]
    )
    [statement] = detect_and_parse(data, max_lines=10)
    assert (statement.format, statement.account_iban, statement.currency) == (
        "mt940",
        ACCOUNT,
        "EUR",
    )
    assert statement.statement_ref == "STARTUMS/00042/001/2026-11-20"
    [line] = statement.lines
    assert (line.amount_minor, line.credit, line.bank_ref) == (25000, True, "B77")
    assert "RF18539007547034" in line.remittance
    assert line.payer_name == "Jeanne Martin" and line.payer_iban == "DE89370400440532013000"


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><Stmt>
<Id>&xxe;</Id></Stmt></BkToCstmrStmt></Document>"""
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">&lol3;</Document>"""


@pytest.mark.parametrize("attack", [XXE, LAUGHS], ids=["xxe", "billion-laughs"])
def test_dtd_and_entities_are_refused_before_expansion(attack: bytes) -> None:
    with pytest.raises(StatementError, match="refused XML construct"):
        detect_and_parse(attack, max_lines=10)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (camt053([Credit("1.00")])[:-30], "malformed XML"),
        (b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pain.001.001.03'/>", "not a camt.053"),
        (camt053([Credit("1.001")]), "not an amount in EUR"),
        (camt053([Credit("abc")]), "not an amount"),
        (camt053([Credit("99999999999999999999")]), "larger than this system accepts"),
        (camt053([Credit("NaN")]), "not an amount"),
        (camt053([Credit("1.00")]).replace(b"<Id>STMT-2026-11-20</Id>", b""), "no <Id>"),
        (b"hello", "neither a camt.053"),
        (b":20:X\r\n:25:Y\r\n:61:garbage\r\n", "MT940"),
    ],
)
def test_broken_files_name_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(StatementError, match=message):
        detect_and_parse(data, max_lines=10)


def test_line_limit() -> None:
    with pytest.raises(StatementError, match="more than 2 lines"):
        detect_and_parse(camt053([Credit("1.00")] * 3), max_lines=2)


def test_an_unknown_currency_is_a_statement_error_not_two_decimals() -> None:
    """babel answers 2 decimals for any code it does not know: `to_minor` must not trust that."""
    with pytest.raises(StatementError, match="unknown currency 'XYZ'") as refused:
        to_minor("1.00", "XYZ", 3)
    assert refused.value.line == 3
    assert to_minor("1", "JPY", 1) == 1 and to_minor("1.5", "KWD", 1) == 1500


# --- MT940 files holding several statements ---------------------------------------------------

DAY1, DAY2 = date(2026, 11, 19), date(2026, 11, 20)
SWISS = "CH9300762011623852957"


def _day1(**kwargs: Any) -> bytes:
    credits = [Credit("100.00", ref="D1-A", booked=DAY1), Credit("5.00", debit=True, booked=DAY1)]
    return mt940(
        credits, reference="STMT-1119", number="00041/001", opening="20.00", day=DAY1, **kwargs
    )


def _day2(**kwargs: Any) -> bytes:
    credits = [Credit("30.00", ref="D2-A", booked=DAY2, payer="Jeanne Martin")]
    return mt940(
        credits, reference="STMT-1120", number="00042/001", opening="115.00", day=DAY2, **kwargs
    )


def _summary(statements: list[Statement]) -> list[tuple[Any, ...]]:
    return [
        (
            s.statement_ref,
            s.account_iban,
            s.currency,
            [(line.line_no, line.bank_ref, line.amount_minor, line.credit) for line in s.lines],
        )
        for s in statements
    ]


TWO_DAYS = [
    (
        "STMT-1119/00041/001/2026-11-19",
        ACCOUNT,
        "EUR",
        [(1, "D1-A", 10000, True), (2, None, 500, False)],
    ),
    ("STMT-1120/00042/001/2026-11-20", ACCOUNT, "EUR", [(3, "D2-A", 3000, True)]),
]


@pytest.mark.parametrize("newline", [b"\r\n", b"\n"], ids=["crlf", "lf"])
def test_each_mt940_statement_of_a_file_keeps_its_own_reference_and_lines(newline: bytes) -> None:
    data = (_day1() + b"\r\n" + _day2()).replace(b"\r\n", newline)
    statements = detect_and_parse(data, max_lines=10)
    assert _summary(statements) == TWO_DAYS
    assert [line.booking_date for s in statements for line in s.lines] == [DAY1, DAY1, DAY2]
    assert statements[1].lines[0].payer_name == "Jeanne Martin"


def test_statements_of_two_accounts_in_one_file_keep_their_account_and_currency() -> None:
    data = _day1() + b"\r\n" + _day2(account=SWISS, currency="CHF")
    statements = detect_and_parse(data, max_lines=10)
    assert [(s.account_iban, s.currency) for s in statements] == [(ACCOUNT, "EUR"), (SWISS, "CHF")]
    assert [line.currency for s in statements for line in s.lines] == ["EUR", "EUR", "CHF"]


@pytest.mark.parametrize(
    "between", [b"", b"\r\n", b"\r\n\r\n"], ids=["same-line", "next-line", "blank-line"]
)
def test_swift_wrapped_messages_are_read_one_statement_each(between: bytes) -> None:
    data = swift_wrapped(_day1(), session=1) + between + swift_wrapped(_day2(), session=2)
    statements = detect_and_parse(data, max_lines=10)
    assert _summary(statements) == TWO_DAYS
    assert statements[1].lines[0].payer_name == "Jeanne Martin"  # no `-}` left in the text


def test_the_line_limit_counts_the_whole_file() -> None:
    with pytest.raises(StatementError, match="more than 2 lines"):
        detect_and_parse(_day1() + b"\r\n" + _day2(), max_lines=2)


def test_a_byte_order_mark_does_not_hide_the_first_statement() -> None:
    statements = detect_and_parse(b"\xef\xbb\xbf" + _day1() + b"\r\n" + _day2(), max_lines=10)
    assert _summary(statements) == TWO_DAYS


def test_intermediate_balances_and_a_debit_opening_balance_add_up() -> None:
    data = mt940([Credit("250.00"), Credit("4.00", debit=True)], opening="-10.50")
    data = data.replace(b":60F:", b":60M:").replace(b":62F:", b":62M:")
    [statement] = detect_and_parse(data, max_lines=10)
    assert [line.amount_minor for line in statement.lines] == [25000, 400]
    assert b":60M:D261119EUR10,50" in data and b":62M:C261120EUR235,50" in data


def test_balances_may_carry_more_decimals_than_babel_gives_the_currency() -> None:
    """Hungarian banks write HUF balances with fillér (ISO 4217: 2 decimals); babel says 0."""
    data = mt940([Credit("2402", debit=True, currency="HUF")], currency="HUF", opening="627311.30")
    assert b":62F:C261120HUF624909,30" in data
    [statement] = detect_and_parse(data, max_lines=10)
    assert (statement.currency, statement.lines[0].amount_minor) == ("HUF", 2402)


def test_balances_that_do_not_add_up_name_the_statement_and_both_figures() -> None:
    data = _day1() + b"\r\n" + _day2(closing="150.00")
    with pytest.raises(StatementError) as refused:
        detect_and_parse(data, max_lines=10)
    assert str(refused.value) == (
        "statement STMT-1120/00042/001: the opening balance (:60F:) 115.00 EUR plus the credits "
        "30.00 minus the debits 0.00 gives 145.00 EUR, but the closing balance (:62F:) is "
        "150.00 EUR; the statement is incomplete or altered"
    )
    assert refused.value.line == 0


MT942 = (
    f":20:STMT-942\r\n:25:{ACCOUNT}\r\n:28C:7/1\r\n:34F:EUR0,00\r\n:13D:2611201200+0100\r\n"
    ":61:2611201120C5,00NTRFNONREF//I1\r\n:86:166?00SEPA-GUTSCHRIFT\r\n:90C:1EUR5,00\r\n-"
).encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_day1().replace(b":62F:C261119EUR115,00\r\n", b""), "STMT-1119/00041/001 has no closing"),
        (_day1().replace(b":60F:C261118EUR20,00\r\n", b""), "STMT-1119/00041/001 has no opening"),
        (
            _day1().replace(b":62F:C261119EUR", b":62F:C261119CHF"),
            "closing balance (:62F:) is in CHF",
        ),
        (_day1().replace(b"EUR", b"XYZ"), "unknown currency 'XYZ'"),
        (MT942, "STMT-942/7/1 is an MT942 interim report"),
        (
            _day1() + b"\r\n" + _day2().replace(b":61:2611201120C30", b":61:2611201120X30"),
            "STMT-1120",
        ),
        (b"{1:F01BANKFRPPAXXX0001000001}{4:\r\nX:20:R\r\n:62F:C261120EUR0,00\r\n-}", "no :20: tag"),
    ],
    ids=[
        "no-closing",
        "no-opening",
        "two-currencies",
        "unknown-currency",
        "mt942",
        "second-malformed",
        "empty-block",
    ],
)
def test_broken_mt940_statements_are_named(data: bytes, message: str) -> None:
    with pytest.raises(StatementError, match=re.escape(message)):
        detect_and_parse(data, max_lines=10)


def test_lowercase_marks_are_read_like_uppercase_ones() -> None:
    data = mt940([Credit("250.00")], opening="-10.00")
    data = data.replace(b":61:2611201120C", b":61:2611201120c").replace(b":60F:D", b":60F:d")
    [statement] = detect_and_parse(data, max_lines=10)
    assert statement.lines[0].credit and statement.lines[0].amount_minor == 25000
