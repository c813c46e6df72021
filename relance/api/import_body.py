"""The body of `POST /invoices/import`: JSON rows, a multipart CSV upload, or a raw CSV body.

Whatever the format, the result is rows in the CSV importer's vocabulary plus the problems found
before the importer runs: column widths, control characters and absurd amounts, which the
importer leaves to the database (PostgreSQL would answer with a 500, SQLite would store them).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any

from babel.numbers import get_currency_precision
from fastapi import Depends, Request
from pydantic import ValidationError

from relance.api.schemas import (
    MAX_MINOR,
    ImportRequest,
    ImportRow,
    iso_currencies,
    no_control_chars,
)
from relance.errors import BadInput, InvalidContent, UnsupportedMediaType

MAX_ROWS = 5000
# Widths of the columns each CSV field lands in (relance/db/models); PostgreSQL enforces them.
CSV_WIDTHS = {
    "customer_number": 64,
    "name": 200,
    "company": 200,
    "segment": 16,
    "risk_class": 16,
    "language": 8,
    "timezone": 64,
    "jurisdiction": 8,
    "phone": 32,
    "whatsapp": 32,
    "email": 254,
    "address_line": 300,
    "postcode": 16,
    "city": 120,
    "country": 2,
    "invoice_number": 64,
    "description": 300,
    "amount": 24,
    "paid_amount": 24,
    "currency": 3,
    "issue_date": 10,
    "due_date": 10,
}
REQUIRED_COLUMNS = (
    "customer_number",
    "name",
    "phone",
    "invoice_number",
    "amount",
    "currency",
    "issue_date",
    "due_date",
)
_AMOUNT = re.compile(r"^[0-9][0-9 ]{0,15}([.,][0-9]{1,4})?$")


@dataclass
class ImportPayload:
    """Rows in the importer's CSV vocabulary, plus problems found before the importer runs."""

    rows: list[dict[str, str | None]]
    csv: bool
    problems: dict[int, list[str]] = field(default_factory=dict)  # by 1-based data row


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Resolve pydantic's local `$defs` so the schema can sit inline in the OpenAPI document."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return {k: walk(v) for k, v in schema.items()}


IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _inline_refs(ImportRequest.model_json_schema())},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}


async def read_import(request: Request) -> ImportPayload:
    """Parse the body by content type (async: reading the body must not block a worker thread)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        return _json_payload(await request.body())
    if kind == "multipart/form-data":
        try:
            form = await request.form(max_files=1, max_fields=10)
        except Exception as exc:  # malformed multipart
            raise BadInput("malformed_body", "The multipart body cannot be parsed") from exc
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidContent("file_required", "Send the CSV as a file field named 'file'")
        return _csv_payload(await upload.read())
    if kind in ("text/csv", "text/plain"):
        return _csv_payload(await request.body())
    raise UnsupportedMediaType(
        "unsupported_media_type",
        "Send application/json rows, a multipart 'file' upload or a text/csv body",
    )


def _json_payload(body: bytes) -> ImportPayload:
    try:
        parsed = ImportRequest.model_validate_json(body)
    except ValidationError as exc:
        problems: dict[int, list[str]] = {}
        for err in exc.errors(include_url=False):
            loc = err.get("loc", ())
            if len(loc) >= 2 and loc[0] == "rows" and isinstance(loc[1], int):
                where = ".".join(str(p) for p in loc[2:]) or "row"
                problems.setdefault(loc[1] + 1, []).append(f"{where}: {_msg(err)}")
            else:
                where = ".".join(str(p) for p in loc) or "body"
                raise InvalidContent("invalid_request", f"{where}: {_msg(err)}") from None
        return ImportPayload(rows=[], csv=False, problems=problems)
    return ImportPayload(rows=[_csv_vocabulary(row) for row in parsed.rows], csv=False)


def _msg(err: Any) -> str:
    return str(err.get("msg", "invalid")).removeprefix("Value error, ")


def _csv_vocabulary(row: ImportRow) -> dict[str, str | None]:
    """JSON amounts are minor units; the importer reads decimal amounts like a spreadsheet."""
    precision = get_currency_precision(row.currency)
    values = row.model_dump(exclude={"amount_minor", "paid_minor"}, exclude_none=True)
    out: dict[str, str | None] = {k: str(v) for k, v in values.items()}
    out["amount"] = str(Decimal(row.amount_minor).scaleb(-precision))
    out["paid_amount"] = str(Decimal(row.paid_minor).scaleb(-precision))
    return out


def _csv_payload(body: bytes) -> ImportPayload:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput("bad_encoding", "The CSV must be UTF-8") from exc
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [h.strip().lower() for h in (reader.fieldnames or []) if h]
        rows = list(reader)
    except csv.Error as exc:
        raise InvalidContent("malformed_csv", f"The CSV cannot be read: {exc}") from exc
    missing = [col for col in REQUIRED_COLUMNS if col not in header]
    if missing:
        raise InvalidContent("missing_columns", "The CSV lacks columns: " + ", ".join(missing))
    if not rows:
        raise InvalidContent("empty_import", "The CSV has no data rows")
    if len(rows) > MAX_ROWS:
        raise InvalidContent("too_many_rows", f"At most {MAX_ROWS} rows per import")
    problems: dict[int, list[str]] = {}
    for number, row in enumerate(rows, start=1):
        found = _csv_row_problems(row)
        if found:
            problems[number] = found
    return ImportPayload(rows=rows, csv=True, problems=problems)


def _csv_row_problems(row: dict[Any, Any]) -> list[str]:
    problems: list[str] = []
    if None in row:
        problems.append("the row has more fields than the header")
    cells = {str(k).strip().lower(): (v or "").strip() for k, v in row.items() if k}
    for column, value in cells.items():
        width = CSV_WIDTHS.get(column)
        if width is not None and len(value) > width:
            problems.append(f"{column} is longer than {width} characters")
        try:
            no_control_chars(value)
        except ValueError:
            problems.append(f"{column} contains control characters")
    currency = cells.get("currency", "").upper()
    precision = get_currency_precision(currency) if currency in iso_currencies() else 2
    for column in ("amount", "paid_amount"):
        value = cells.get(column, "")
        if not value:
            continue
        if not _AMOUNT.match(value):
            problems.append(f"{column} '{value[:24]}' is not an amount such as 1234.56")
        elif Decimal(value.replace(" ", "").replace(",", ".")).scaleb(precision) > MAX_MINOR:
            problems.append(f"{column} is larger than this system accepts")
    return problems


ImportBody = Annotated[ImportPayload, Depends(read_import)]
