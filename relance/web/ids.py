"""The one constrained type for ids taken from a URL or a form.

Every table's primary key is an SQL `integer` (32-bit on PostgreSQL), so a larger number can name
no row; passed on, it made the driver fail (SQLite: "Python int too large to convert", psycopg:
"integer out of range") and the request answer 500. Bounded at the edge, it is a 422 that names
the parameter and the bound. Version numbers (policy, wording) start at 0 for "nothing yet".
"""

from __future__ import annotations

from typing import Annotated, Any

from annotated_types import Ge, Le
from pydantic import BeforeValidator

MAX_ID = 2**31 - 1  # largest SQL `integer`

RowId = Annotated[int, Ge(1), Le(MAX_ID)]
VersionNumber = Annotated[int, Ge(0), Le(MAX_ID)]


def _blank_is_none(value: Any) -> Any:
    """A filter form submits an empty field as `?debtor_id=`: that means "no filter"."""
    return None if isinstance(value, str) and not value.strip() else value


OptionalRowId = Annotated[RowId | None, BeforeValidator(_blank_is_none)]
