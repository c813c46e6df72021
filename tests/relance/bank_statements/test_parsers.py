"""camt.053 and MT940 reading: fields, versions, batch bookings, and hostile or broken files."""

from __future__ import annotations

from datetime import date

import pytest

from relance.bank_statements.parsers import StatementError, detect_and_parse, to_minor
from tests.relance.bank_statements.builders import ACCOUNT, Credit, camt053, mt940


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
    assert statement.statement_ref == "STARTUMS/00042/001"
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
