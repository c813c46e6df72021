"""Read camt.053 (ISO 20022) and MT940 statements into plain records, nothing stored.

camt.053 is read with defusedxml's `iterparse`: a DTD, an entity declaration or an external
reference (XXE, "billion laughs") is refused before anything is expanded, and each `<Ntry>` is
dropped from memory once read, so a 50,000-line statement never sits whole in memory as a tree.
pycamt (lxml, entities and network off) reads the same fields but parses the whole document in
memory with `etree.fromstring`; streaming keeps memory flat on large statements. MT940 is read by the `mt-940` library, with its SEPA
`:86:` sub-field processors for the payer's name, IBAN and remittance text. An MT940 file often
holds several statements (a day or an account each, each maybe in its own SWIFT FIN message):
it is split at every `:20:` and each statement is read on its own, then checked: its opening
balance plus its credits minus its debits must give its closing balance.

Every problem is a `StatementError` naming the line (or the statement) it is about; the service
turns them into one all-or-nothing refusal.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element, ParseError

from babel.numbers import get_currency_precision, list_currencies
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

if TYPE_CHECKING:
    from mt940.models import Transactions

CAMT053_NS = "urn:iso:std:iso:20022:tech:xsd:camt.053."
CAMT053, MT940 = "camt.053", "mt940"
MAX_TEXT = 1000
MAX_MINOR = (
    10**15
)  # ten trillion euros: far above any statement line, far below BIGINT  # remittance text kept per line (the standard allows 140 × n)


class StatementError(ValueError):
    """The file cannot be read as a statement; `line` is the 1-based entry (0: the whole file).

    Internal to the import, not a RelanceError: `bank_statements.service` catches it and refuses
    the whole file once, as `InvalidContent("invalid_statement")` listing every line's problem."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


@dataclass(slots=True)
class Line:
    """One credit (or debit) booked on the account."""

    line_no: int
    credit: bool
    amount_minor: int
    currency: str
    booking_date: date
    bank_ref: str | None = None  # the bank's own id for the line, when it gives one
    payer_name: str | None = None
    payer_iban: str | None = None
    reference: str | None = None  # structured creditor reference (<CdtrRefInf><Ref>)
    remittance: str = ""
    reversal: bool = False

    def key(self, occurrence: int) -> str:
        """A stable identity for the line: the bank's reference, else a digest of its content
        (`occurrence` separates identical lines of one statement)."""
        if self.bank_ref:
            # Banks repeat a reference on the transfers of one batch (PostFinance gives each
            # `TxDtls` the batch's `AcctSvcrRef`): the second and later get their occurrence.
            suffix = f"#{occurrence}" if occurrence else ""
            return f"ref:{self.bank_ref[: 124 - len(suffix)]}{suffix}"
        digest = hashlib.sha256(
            "|".join(
                (
                    self.booking_date.isoformat(),
                    str(self.amount_minor),
                    self.currency,
                    "C" if self.credit else "D",
                    self.payer_iban or "",
                    self.payer_name or "",
                    self.reference or "",
                    self.remittance,
                    str(occurrence),
                )
            ).encode()
        ).hexdigest()
        return f"sha:{digest[:40]}"


@dataclass(slots=True)
class Statement:
    format: str
    statement_ref: str
    account_iban: str
    currency: str
    lines: list[Line] = field(default_factory=list)


@lru_cache(maxsize=1)
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def to_minor(text: str, currency: str, line: int) -> int:
    """'1234.5' EUR → 123450; more decimals than the currency has, or a negative, is an error."""
    try:
        value = Decimal(text.strip().replace(",", "."))
    except InvalidOperation:
        raise StatementError(f"not an amount: {text[:30]!r}", line) from None
    # babel answers 2 decimals for a code it does not know (it does not raise): check first.
    if currency not in _currencies():
        raise StatementError(f"unknown currency {currency[:8]!r}", line)
    precision = get_currency_precision(currency)
    if not value.is_finite():
        raise StatementError(f"not an amount: {text[:30]!r}", line)
    scaled = value.scaleb(precision)
    if scaled != scaled.to_integral_value() or scaled < 0:
        raise StatementError(f"not an amount in {currency}: {text[:30]!r}", line)
    if scaled > MAX_MINOR:
        raise StatementError(f"amount larger than this system accepts: {text[:30]!r}", line)
    return int(scaled)


# --- camt.053 ---------------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


@lru_cache(maxsize=256)
def _qualified(namespace: str, path: str) -> str:
    return "/".join(namespace + part for part in path.split("/"))


def _namespace(node: Element) -> str:
    tag = node.tag
    return tag[: tag.index("}") + 1] if tag.startswith("{") else ""


def _find(node: Element, path: str) -> Element | None:
    """Path lookup in the node's own namespace ('Acct/Id/IBAN'): camt versions differ only by
    namespace. ElementTree's compiled paths keep this fast on 50,000 entries."""
    return node.find(_qualified(_namespace(node), path))


def _text(node: Element, path: str) -> str | None:
    found = _find(node, path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _all(node: Element, path: str) -> list[Element]:
    """Every element at `path`."""
    return node.findall(_qualified(_namespace(node), path))


def _camt_date(node: Element, path: str, line: int) -> date:
    raw = _text(node, f"{path}/Dt") or _text(node, f"{path}/DtTm")
    if raw is None:
        raise StatementError(f"no {path} date", line)
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        raise StatementError(f"not a date: {raw[:30]!r}", line) from None


def _party_name(details: Element, role: str) -> str | None:
    # camt.053.001.02-07: RltdPties/Dbtr/Nm; .08 and later: RltdPties/Dbtr/Pty/Nm.
    return _text(details, f"RltdPties/{role}/Nm") or _text(details, f"RltdPties/{role}/Pty/Nm")


def _camt_lines(entry: Element, line_no: int) -> list[Line]:
    amount_node = _find(entry, "Amt")
    if amount_node is None or not (amount_node.text or "").strip():
        raise StatementError("entry without an amount", line_no)
    currency = (amount_node.get("Ccy") or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise StatementError("entry amount without a currency", line_no)
    indicator = _text(entry, "CdtDbtInd")
    if indicator not in ("CRDT", "DBIT"):
        raise StatementError(f"CdtDbtInd must be CRDT or DBIT, not {indicator!r}", line_no)
    status = _text(entry, "Sts/Cd") or _text(entry, "Sts")
    booking = _camt_date(entry, "BookgDt", line_no) if status != "PDNG" else None
    if booking is None:
        booking = _camt_date(entry, "ValDt", line_no)
    reversal = (_text(entry, "RvslInd") or "").lower() == "true"
    entry_ref = _text(entry, "AcctSvcrRef") or _text(entry, "NtryRef")
    details = [tx for d in _all(entry, "NtryDtls") for tx in _all(d, "TxDtls")]
    # A batch booking lists its transfers, each with its own amount: one line per transfer.
    amounts = [_tx_amount(tx) for tx in details]
    split = len(details) > 1 and all(a is not None for a in amounts)
    parts: list[tuple[Element | None, Element, str | None]] = (
        [
            (tx, tx_amount, _text(tx, "Refs/AcctSvcrRef") or _sub(entry_ref, n))
            for n, (tx, tx_amount) in enumerate(zip(details, amounts, strict=True), start=1)
            if tx_amount is not None
        ]
        if split
        else [(details[0] if details else None, amount_node, entry_ref)]
    )
    lines = []
    for tx, amount, bank_ref in parts:
        amount_text = amount.text or ""
        tx_currency = ((amount.get("Ccy") or "") if split else currency).strip().upper()
        line = Line(
            line_no=line_no,
            credit=indicator == "CRDT",
            amount_minor=to_minor(amount_text, tx_currency or currency, line_no),
            currency=tx_currency or currency,
            booking_date=booking,
            bank_ref=bank_ref,
            reversal=reversal,
        )
        if tx is not None:
            line.payer_name = (_party_name(tx, "Dbtr") or "")[:140] or None
            line.payer_iban = _text(tx, "RltdPties/DbtrAcct/Id/IBAN")
            line.reference = _text(tx, "RmtInf/Strd/CdtrRefInf/Ref")
            unstructured = [(u.text or "").strip() for u in _all(tx, "RmtInf/Ustrd")]
            line.remittance = " ".join(u for u in unstructured if u)[:MAX_TEXT]
            if not line.bank_ref:
                line.bank_ref = _text(tx, "Refs/EndToEndId")
                if line.bank_ref == "NOTPROVIDED":
                    line.bank_ref = None
        extra = _text(entry, "AddtlNtryInf")
        if extra and not line.remittance:
            line.remittance = extra[:MAX_TEXT]
        lines.append(line)
    return lines


def _tx_amount(tx: Element) -> Element | None:
    """A transfer's own amount: `TxDtls/Amt` (camt.053.001.03 and later), else the amount the
    transfer was made for, `AmtDtls/TxAmt/Amt` (the only one camt.053.001.02 has)."""
    own = _find(tx, "Amt")  # an Element without children is falsy: compare with None
    return own if own is not None else _find(tx, "AmtDtls/TxAmt/Amt")


def _sub(ref: str | None, n: int) -> str | None:
    return f"{ref}/{n}" if ref else None


def parse_camt053(data: bytes, *, max_lines: int) -> list[Statement]:
    """Every `<Stmt>` of a camt.053 document, its lines in file order."""
    statements: list[Statement] = []
    current: Statement | None = None
    stack: list[str] = []
    line_no = 0
    try:
        for event, node in iterparse(
            io.BytesIO(data), events=("start", "end"), forbid_dtd=True, forbid_entities=True
        ):
            tag = _local(node.tag)
            if event == "start":
                if not stack:
                    namespace = node.tag[1:].split("}", 1)[0] if node.tag.startswith("{") else ""
                    if tag != "Document" or not namespace.startswith(CAMT053_NS):
                        raise StatementError(
                            "not a camt.053 document (root must be <Document> in the "
                            f"{CAMT053_NS}* namespace)"
                        )
                if tag == "Stmt":
                    current = Statement(CAMT053, "", "", "")
                    statements.append(current)
                stack.append(tag)
                continue
            stack.pop()
            parent = stack[-1] if stack else ""
            if current is None or parent != "Stmt":
                continue
            if tag == "Ntry":
                line_no += 1
                if line_no > max_lines:
                    raise StatementError(f"more than {max_lines} lines in one file")
                current.lines.extend(_camt_lines(node, line_no))
                node.clear()
            elif tag == "Id":
                current.statement_ref = (node.text or "").strip()[:128]
            elif tag == "Acct":
                current.account_iban = _text(node, "Id/IBAN") or _text(node, "Id/Othr/Id") or ""
                current.currency = (_text(node, "Ccy") or "").upper()
            elif tag == "Bal":
                # <Acct><Ccy> is optional: a day without entries still has its balances'
                # currency (the account's), which the statement needs to be checked.
                amount = _find(node, "Amt")
                if not current.currency and amount is not None:
                    current.currency = (amount.get("Ccy") or "").strip().upper()
                node.clear()
            elif tag == "TxsSummry":
                node.clear()
        for statement in statements:
            if not statement.statement_ref:
                raise StatementError("the statement has no <Id>")
            if not statement.account_iban:
                raise StatementError("the statement names no account (<Acct><Id><IBAN>)")
            if not statement.currency:
                statement.currency = _first_currency(statement)
    except DefusedXmlException as exc:
        raise StatementError(f"refused XML construct: {type(exc).__name__}") from None
    except ParseError as exc:
        raise StatementError(f"malformed XML: {exc}") from None
    if not statements:
        raise StatementError("the document holds no statement (<Stmt>)")
    return statements


def _first_currency(statement: Statement) -> str:
    if not statement.lines:
        raise StatementError("the statement names no currency and has no lines")
    return statement.lines[0].currency


# --- MT940 ------------------------------------------------------------------------------------


def _mt940_text(details: dict[str, Any]) -> str:
    parts = [str(details.get(k) or "") for k in ("purpose", "end_to_end_reference")]
    return " ".join(p.strip() for p in parts if p.strip())


# A SWIFT FIN message wraps the statement in blocks: `{1:…}{2:…}{3:{108:…}}{4:` CRLF, the tags,
# CRLF `-}`, then trailers such as `{5:{CHK:…}}`. Messages may follow each other on one line.
_BLOCK = r"\{[0-9A-Z]:(?:[^{}\n]|\{[^{}\n]*\})*\}"
_SWIFT_END = re.compile(r"(?m)^-\}")
_SWIFT_HEAD = re.compile(rf"(?m)^[ \t]*(?:{_BLOCK}[ \t]*)*\{{4:[ \t]*")
_STATEMENT_START = re.compile(r"(?m)^(?=:20:)")
_TERMINATOR = re.compile(r"(?m)^-[ \t]*$")


def split_mt940(text: str) -> list[str]:
    """The statements of an MT940 file, each from its `:20:` to its `-` (or `-}`), without the
    SWIFT block wrappers; CRLF, CR or LF line ends. Text outside a statement is dropped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SWIFT_END.sub("-\n", text)  # the trailer and the next headers to their own line
    text = _SWIFT_HEAD.sub("", text)  # `{1:…}{2:…}{4:` gone, `:20:` at the start of its line
    blocks = []
    for chunk in _STATEMENT_START.split(text):
        if chunk.startswith(":20:"):
            blocks.append(_TERMINATOR.split(chunk, maxsplit=1)[0])
    return blocks


def _mt940_transactions(block: str) -> Transactions:
    import mt940  # imported when needed: most imports are camt.053

    transactions = mt940.models.Transactions(
        processors={
            "post_transaction": [mt940.processors.transaction_details_post_processor],
        },
        # ?31 is the payer's account (IBAN), not part of the name; an :86: without KREF
        # keeps the :61: customer reference; a lowercase `d` balance is negative too.
        options=mt940.Options(
            applicant_iban=True, merge_keeps_values=True, case_insensitive_marks=True
        ),
    )
    transactions.parse(block)
    return transactions


def _mt940_problem(exc: Exception) -> str:
    """The library's `RuntimeError(message, tag, value)` said without the tag object's repr."""
    args = exc.args
    if len(args) == 3 and isinstance(args[2], str) and hasattr(args[1], "id"):
        return f"cannot read tag :{args[1].id}: {args[2][:80]!r}"
    return str(exc)[:200]


def parse_mt940(data: bytes, *, max_lines: int) -> list[Statement]:
    """Every statement (`:20:` … `:62F:`) of an MT940 file, each read on its own: the library
    merges the statements of one text into one, the last one's reference and account winning.

    Lines are numbered across the file, as in camt.053, so an error's line number points at one
    line of the file; entry keys do not use the number."""
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark would hide the first `:20:`
    except UnicodeDecodeError:
        try:
            text = data.decode("latin-1")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes any byte
            raise StatementError("unreadable text encoding") from None
    if ":20:" not in text or (":61:" not in text and ":62F:" not in text):
        raise StatementError("not an MT940 statement (no :20: / :61: / :62F: tags)")
    blocks = split_mt940(text)
    if not blocks:
        raise StatementError("not an MT940 statement (no :20: tag at the start of a line)")
    statements: list[Statement] = []
    line_no = 0
    for number, block in enumerate(blocks, start=1):
        label = block.split("\n", 1)[0][:36]
        where = f" (statement {number} of {len(blocks)}, {label})" if len(blocks) > 1 else ""
        try:
            transactions = _mt940_transactions(block)
        except Exception as exc:  # the library raises bare exceptions on malformed tags
            raise StatementError(f"malformed MT940{where}: {_mt940_problem(exc)}") from None
        statement = _mt940_statement(transactions.data, where)
        opening = _mt940_balance(transactions.data, statement.statement_ref, _OPENING)
        closing = _mt940_balance(transactions.data, statement.statement_ref, _CLOSING)
        statement.currency = opening.currency
        if closing.currency != opening.currency:
            raise StatementError(
                f"statement {statement.statement_ref}: the opening balance ({opening.tag}) is in "
                f"{opening.currency}, the closing balance ({closing.tag}) is in {closing.currency}"
            )
        for tx in transactions:
            line_no += 1
            if line_no > max_lines:
                raise StatementError(f"more than {max_lines} lines in one file")
            statement.lines.append(_mt940_line(tx.data, statement.currency, line_no))
        _check_balances(statement, opening, closing)
        if closing.on is not None:
            # Many banks write the same :20: and :28C: on every statement (":20:STARTUMS",
            # ":28C:00000"): without the day, the second day's statement read as the first one
            # imported again and was refused, its payments never booked. The closing balance's
            # date tells the days apart; the same statement exported twice keeps it.
            statement.statement_ref = f"{statement.statement_ref}/{closing.on:%Y-%m-%d}"[:128]
        statements.append(statement)
    return statements


@dataclass(frozen=True, slots=True)
class _Balance:
    tag: str
    value: Decimal  # negative for a debit balance
    currency: str
    on: date | None = None


_OPENING = (
    "opening",
    (("final_opening_balance", ":60F:"), ("intermediate_opening_balance", ":60M:")),
)
_CLOSING = (
    "closing",
    (("final_closing_balance", ":62F:"), ("intermediate_closing_balance", ":62M:")),
)
_MT942_TAGS = ("date_time_indication", "d_floor_limit", "c_floor_limit", "floor_limit_indicator")


def _mt940_balance(
    info: dict[str, Any], ref: str, which: tuple[str, tuple[tuple[str, str], ...]]
) -> _Balance:
    """The statement's opening (:60F:, or :60M: when a statement runs over several messages) or
    closing (:62F: / :62M:) balance. Both are mandatory in MT940."""
    kind, tags = which
    found = next(((info[key], tag) for key, tag in tags if info.get(key) is not None), None)
    if found is None:
        if any(info.get(key) is not None for key in _MT942_TAGS):
            raise StatementError(
                f"statement {ref} is an MT942 interim report (no {kind} balance): import the "
                "day's MT940 statement instead"
            )
        names = " or ".join(tag for _, tag in tags)
        raise StatementError(f"statement {ref} has no {kind} balance ({names})")
    balance, tag = found
    amount = getattr(balance, "amount", None)
    value, currency = getattr(amount, "amount", None), getattr(amount, "currency", None)
    if not isinstance(value, Decimal) or not value.is_finite() or not isinstance(currency, str):
        raise StatementError(f"statement {ref}: unreadable {kind} balance ({tag})")
    currency = currency.upper()
    if currency not in _currencies():
        raise StatementError(
            f"statement {ref}: {kind} balance ({tag}) in an unknown currency {currency[:8]!r}"
        )
    on = getattr(balance, "date", None)
    return _Balance(tag, value, currency, on if isinstance(on, date) else None)


def _show(value: Decimal, currency: str) -> str:
    """An amount with the currency's decimals, or the bank's when it wrote more."""
    exponent = value.as_tuple().exponent
    places = max(get_currency_precision(currency), -exponent if isinstance(exponent, int) else 0)
    return f"{value:.{places}f}"


def _check_balances(statement: Statement, opening: _Balance, closing: _Balance) -> None:
    """Opening balance + credits - debits = closing balance, or lines are missing (a truncated
    file, a statement cut between two messages) or were changed: refuse rather than book part of
    a statement.

    Exact arithmetic on the lines' minor units, added in major units: balances keep the decimals
    the bank wrote, which may be more than babel's (CLDR's) precision for the currency (HUF, IDR,
    COP have 0 there, 2 in ISO 4217 and on Hungarian banks' balances)."""
    ccy = statement.currency
    scale = -get_currency_precision(ccy)
    credits = sum(line.amount_minor for line in statement.lines if line.credit)
    debits = sum(line.amount_minor for line in statement.lines if not line.credit)
    credit_value, debit_value = Decimal(credits).scaleb(scale), Decimal(debits).scaleb(scale)
    computed = opening.value + credit_value - debit_value
    if computed != closing.value:
        raise StatementError(
            f"statement {statement.statement_ref}: the opening balance ({opening.tag}) "
            f"{_show(opening.value, ccy)} {ccy} plus the credits {_show(credit_value, ccy)} minus "
            f"the debits {_show(debit_value, ccy)} gives {_show(computed, ccy)} {ccy}, but the "
            f"closing balance ({closing.tag}) is {_show(closing.value, ccy)} {ccy}; the "
            "statement is incomplete or altered"
        )


def _mt940_statement(info: dict[str, Any], where: str) -> Statement:
    iban = str(info.get("account_identification") or "").strip()
    if not iban:
        raise StatementError(f"the statement names no account (:25:){where}")
    number = str(info.get("statement_number") or "").strip()
    sequence = str(info.get("sequence_number") or "").strip()
    reference = str(info.get("transaction_reference") or "").strip()
    statement_ref = "/".join(p for p in (reference, number, sequence) if p)
    if not statement_ref:
        raise StatementError(f"the statement has no reference (:20:) nor number (:28C:){where}")
    return Statement(MT940, statement_ref[:128], iban.split("/")[-1], "")


def _mt940_line(details: dict[str, Any], currency: str, line_no: int) -> Line:
    amount = details.get("amount")
    if amount is None:
        raise StatementError("line without an amount", line_no)
    value = Decimal(str(amount.amount))
    status = str(details.get("status") or "").upper()  # the tag pattern accepts `c`, `rd`…
    tx_currency = str(amount.currency or currency).upper()
    booked = details.get("entry_date") or details.get("date")
    if not isinstance(booked, date):
        raise StatementError("line without a date", line_no)
    bank_ref = str(details.get("bank_reference") or "").strip() or None
    customer_ref = str(details.get("customer_reference") or "").strip()
    if customer_ref.upper() == "NONREF":
        customer_ref = ""
    line = Line(
        line_no=line_no,
        credit=status in ("C", "RD"),
        amount_minor=to_minor(str(abs(value)), tx_currency, line_no),
        currency=tx_currency,
        booking_date=booked,
        bank_ref=bank_ref,
        payer_name=(str(details.get("applicant_name") or "").strip()[:140] or None),
        payer_iban=(
            str(details.get("applicant_iban") or details.get("gvc_applicant_iban") or "")
            .strip()
            .replace(" ", "")
            or None
        ),
        remittance=(
            _mt940_text(details) or str(details.get("transaction_details") or "").replace("\n", " ")
        )[:MAX_TEXT],
        reversal=status in ("RC", "RD"),
    )
    if customer_ref:
        line.remittance = f"{customer_ref} {line.remittance}".strip()[:MAX_TEXT]
    return line


def detect_and_parse(data: bytes, *, max_lines: int) -> list[Statement]:
    """camt.053 when the file is XML, MT940 when it carries MT940 tags; anything else is refused."""
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return parse_camt053(data, max_lines=max_lines)
    if b":20:" in data[:4096]:
        return parse_mt940(data, max_lines=max_lines)
    raise StatementError("neither a camt.053 (XML) nor an MT940 statement")
