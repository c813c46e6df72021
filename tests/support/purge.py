"""Remove committed test debtors and every row that refers to them, in any table.

Most tests run inside a transaction that is rolled back; the concurrency tests cannot (two
sessions must see each other's commits), so they clean up after themselves. Listing the tables by
hand went stale as features added tables: the outbox's events carry a `debtor_id` without a
foreign key, survived the cleanup and were counted by a later test that reused the same debtor id.
This walks the metadata instead, so a new table is covered the day it is added.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import ColumnElement, delete, false, or_, select
from sqlalchemy.orm import Session

from relance.db.base import Base


def _conditions(ids: Collection[int]) -> dict[str, ColumnElement[bool]]:
    """For each table, the condition selecting its rows that belong to the debtors `ids`: the
    debtors themselves, rows with their `debtor_id`, and rows pointing at a selected parent row.
    `sorted_tables` lists parents first, so each parent's condition exists before its children's;
    a foreign key inside a cycle (no order possible) finds none and is skipped."""
    conditions: dict[str, ColumnElement[bool]] = {}
    for table in Base.metadata.sorted_tables:
        mine: list[ColumnElement[bool]] = []
        if table.name == "debtors":
            mine.append(table.c.id.in_(ids))
        if "debtor_id" in table.c:
            mine.append(table.c.debtor_id.in_(ids))
        for fk in table.foreign_keys:
            parent = conditions.get(fk.column.table.name)
            if parent is not None and fk.column.table is not table:
                mine.append(fk.parent.in_(select(fk.column).where(parent)))
        conditions[table.name] = or_(false(), *mine)
    return conditions


def purge_debtors(session: Session, ids: Collection[int]) -> None:
    """Delete the debtors `ids` and everything that refers to them, children first; commits."""
    ids = list(ids)
    if not ids:
        return
    conditions = _conditions(ids)
    for table in reversed(Base.metadata.sorted_tables):
        session.execute(delete(table).where(conditions[table.name]))
    session.commit()
