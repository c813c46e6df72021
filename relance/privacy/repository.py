"""Every row held about one debtor, found from the schema itself.

Tables with a `debtor_id` column are read directly; the few child tables that reach the debtor
through a parent (messages and handoffs through the conversation, installments through the plan,
allocations through the payment) are listed in `CHILDREN`. A new table with a `debtor_id` is
therefore exported and scanned without touching this module.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, String, Table, Text, cast, func, or_, select
from sqlalchemy.orm import Session

from relance.db.base import Base
from relance.db.models import Debtor
from relance.errors import NotFound

# child table -> (its foreign key column, parent table)
CHILDREN: dict[str, tuple[str, str]] = {
    "messages": ("conversation_id", "conversations"),
    "handoffs": ("conversation_id", "conversations"),
    "installments": ("plan_id", "payment_plans"),
    "payment_allocations": ("payment_id", "payments"),
}
# Never exported: a hash of a bearer secret is of no use to the debtor and only helps an attacker.
HIDDEN_COLUMNS = {"payment_links": {"token_hash"}}


def find_debtor(session: Session, ref: str) -> Debtor:
    """By customer number, the reference the creditor's own systems use; else by numeric id.
    `NotFound("debtor_not_found")` when neither names a debtor."""
    ref = ref.strip()
    debtor = session.scalars(select(Debtor).where(Debtor.customer_number == ref)).first()
    if debtor is None and ref.isdigit() and len(ref) < 19:
        debtor = session.get(Debtor, int(ref))
    if debtor is None:
        raise NotFound("debtor_not_found", f"no debtor with customer number or id {ref!r}")
    return debtor


def tables() -> dict[str, Table]:
    import relance.db.models  # noqa: F401  (fills the metadata)

    return dict(Base.metadata.tables)


def debtor_tables() -> list[Table]:
    """Tables holding rows of one debtor, parents before children."""
    found = [t for t in tables().values() if "debtor_id" in t.c and t.name != "debtors"]
    by_name = {t.name: t for t in found}
    ordered = sorted(found, key=lambda t: t.name)
    ordered += [tables()[child] for child, (_fk, parent) in CHILDREN.items() if parent in by_name]
    return ordered


def _row_filter(table: Table, debtor_id: int) -> Any:
    if "debtor_id" in table.c:
        return table.c.debtor_id == debtor_id
    fk, parent_name = CHILDREN[table.name]
    parent = tables()[parent_name]
    return table.c[fk].in_(select(parent.c.id).where(parent.c.debtor_id == debtor_id))


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def debtor_rows(session: Session, debtor_id: int) -> dict[str, list[dict[str, Any]]]:
    """table name -> rows (as plain dicts, ordered by id), the debtor row itself under `debtors`."""
    all_tables = tables()
    debtors = all_tables["debtors"]
    result = {"debtors": _fetch(session, debtors, debtors.c.id == debtor_id)}
    for table in debtor_tables():
        result[table.name] = _fetch(session, table, _row_filter(table, debtor_id))
    return result


def _fetch(session: Session, table: Table, where: Any) -> list[dict[str, Any]]:
    hidden = HIDDEN_COLUMNS.get(table.name, set())
    columns = [c for c in table.c if c.key not in hidden]
    order = table.c.id if "id" in table.c else columns[0]
    rows = session.execute(select(*columns).where(where).order_by(order)).mappings()
    return [{k: jsonable(v) for k, v in row.items()} for row in rows]


def text_columns() -> Iterator[tuple[Table, Any]]:
    """Every string, text and JSON column of every table (for the leftover scan)."""
    for table in tables().values():
        for column in table.c:
            if isinstance(column.type, String | Text | JSON):
                yield table, column


def needle_forms(needle: str) -> set[str]:
    """The text itself and its JSON-escaped form (JSON columns store `é` as `\\u00e9`)."""
    import json

    return {needle, json.dumps(needle)[1:-1]}


def contains_any(column: Any, needles: list[str]) -> Any:
    """SQL: the column (as text) contains one of the needles, on SQLite and PostgreSQL alike."""
    as_text = cast(column, Text) if isinstance(column.type, JSON) else column
    terms = [as_text.contains(form, autoescape=True) for n in needles for form in needle_forms(n)]
    return or_(*terms)


def leftovers(session: Session, needles: list[str]) -> dict[str, int]:
    """`table.column` -> number of rows still containing one of the needles."""
    needles = [n for n in needles if n]
    if not needles:
        return {}
    found: dict[str, int] = {}
    for table, column in text_columns():
        count = session.scalar(
            select(func.count()).select_from(table).where(contains_any(column, needles))
        )
        if count:
            found[f"{table.name}.{column.key}"] = count
    return found
