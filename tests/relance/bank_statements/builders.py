"""Statement files built in the tests: camt.053.001.02 XML and MT940 text, one credit per tuple."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from xml.sax.saxutils import escape

ACCOUNT = "FR7630006000011234567890189"  # the settings' default creditor account


@dataclass
class Credit:
    amount: str  # major units, "120.50"
    ref: str | None = None  # the bank's AcctSvcrRef
    remittance: str = ""
    structured: str | None = None  # <CdtrRefInf><Ref>
    payer: str | None = None
    payer_iban: str | None = None
    currency: str = "EUR"
    booked: date = date(2026, 11, 20)
    debit: bool = False


def _number(text: str) -> bool:
    return text.replace(".", "", 1).isdigit()


def camt053(
    credits: list[Credit],
    *,
    statement_id: str = "STMT-2026-11-20",
    account: str = ACCOUNT,
    currency: str = "EUR",
    version: str = "02",
) -> bytes:
    entries = []
    for c in credits:
        party = (
            f"<RltdPties><Dbtr><Nm>{escape(c.payer)}</Nm></Dbtr>"
            + (f"<DbtrAcct><Id><IBAN>{c.payer_iban}</IBAN></Id></DbtrAcct>" if c.payer_iban else "")
            + "</RltdPties>"
            if c.payer
            else ""
        )
        rmt = ""
        if c.remittance or c.structured:
            rmt = "<RmtInf>"
            if c.remittance:
                rmt += f"<Ustrd>{escape(c.remittance)}</Ustrd>"
            if c.structured:
                rmt += (
                    "<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp>"
                    f"<Ref>{c.structured}</Ref></CdtrRefInf></Strd>"
                )
            rmt += "</RmtInf>"
        entries.append(
            f'<Ntry><Amt Ccy="{c.currency}">{c.amount}</Amt>'
            f"<CdtDbtInd>{'DBIT' if c.debit else 'CRDT'}</CdtDbtInd><Sts>BOOK</Sts>"
            f"<BookgDt><Dt>{c.booked.isoformat()}</Dt></BookgDt>"
            f"<ValDt><Dt>{c.booked.isoformat()}</Dt></ValDt>"
            + (f"<AcctSvcrRef>{c.ref}</AcctSvcrRef>" if c.ref else "")
            + "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly>"
            "</Domn></BkTxCd>"
            f"<NtryDtls><TxDtls><Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs>{party}{rmt}"
            "</TxDtls></NtryDtls></Ntry>"
        )
    total = sum((Decimal(c.amount) for c in credits if _number(c.amount)), Decimal(0))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}">'
        "<BkToCstmrStmt><GrpHdr><MsgId>MSG-1</MsgId><CreDtTm>2026-11-21T06:00:00</CreDtTm></GrpHdr>"
        f"<Stmt><Id>{statement_id}</Id><ElctrncSeqNb>1</ElctrncSeqNb>"
        "<CreDtTm>2026-11-21T06:00:00</CreDtTm>"
        f"<Acct><Id><IBAN>{account}</IBAN></Id><Ccy>{currency}</Ccy></Acct>"
        f'<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="{currency}">{total}</Amt>'
        "<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-11-20</Dt></Dt></Bal>"
        + "".join(entries)
        + "</Stmt></BkToCstmrStmt></Document>"
    ).encode()


def _balance(tag: str, value: Decimal, day: date, currency: str) -> str:
    """`:60F:C261119EUR12,50`: the mark, the date, the currency and the amount (decimal comma)."""
    amount = f"{abs(value):.2f}".replace(".", ",")
    return f":{tag}:{'D' if value < 0 else 'C'}{day:%y%m%d}{currency}{amount}"


def mt940(
    credits: list[Credit],
    *,
    reference: str = "STARTUMS",
    number: str = "00042/001",
    account: str = ACCOUNT,
    currency: str = "EUR",
    opening: str = "0.00",
    closing: str | None = None,
    day: date = date(2026, 11, 20),
) -> bytes:
    """One statement, `:20:` to `:62F:` and a closing `-`. The closing balance is the opening
    balance plus the credits minus the debits unless `closing` says otherwise."""
    total = Decimal(opening)
    for c in credits:
        if _number(c.amount):
            total += -Decimal(c.amount) if c.debit else Decimal(c.amount)
    lines = [
        f":20:{reference}",
        f":25:{account}",
        f":28C:{number}",
        _balance("60F", Decimal(opening), day - timedelta(days=1), currency),
    ]
    for c in credits:
        booked = c.booked.strftime("%y%m%d")
        amount = c.amount.replace(".", ",")
        mark = "D" if c.debit else "C"
        bank_ref = f"//{c.ref}" if c.ref else ""
        lines.append(f":61:{booked}{booked[2:]}{mark}{amount}NTRFNONREF{bank_ref}")
        details = "166?00SEPA-GUTSCHRIFT"
        if c.remittance:
            details += f"?20SVWZ+{c.remittance}"
        if c.payer_iban:
            details += f"?31{c.payer_iban}"
        if c.payer:
            details += f"?32{c.payer}"
        lines.append(f":86:{details}")
    end = Decimal(closing) if closing is not None else total
    lines.append(_balance("62F", end, day, currency))
    return ("\r\n".join(lines) + "\r\n-").encode()


def swift_wrapped(statement: bytes, *, session: int = 1) -> bytes:
    """The statement as a SWIFT FIN message: basic, application and user headers, block 4 from
    `{4:` to `-}`, then a trailer on the `-}` line (no line end after it: concatenated messages
    then meet on one line, as some banks send them)."""
    body = statement.removesuffix(b"\r\n-")
    return (
        b"{1:F01BANKFRPPAXXX%04d000001}{2:O9401200261120BANKFRPPAXXX00000000002611201200N}"
        b"{3:{108:MT940-%d}}{4:\r\n" % (session, session) + body + b"\r\n-}{5:{CHK:0123456789AB}}"
    )
