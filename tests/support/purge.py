"""Remove committed test debtors and every row that refers to them, in any table.

Most tests run inside a transaction that is rolled back; the concurrency tests cannot (two
sessions must see each other's commits), so they clean up after themselves. Listing the tables by
hand went stale as features added tables: the outbox's events carry a `debtor_id` without a
foreign key, survived the cleanup and were counted by a later test that reused the same debtor id.
This walks the metadata instead, so a new table is covered the day it is added.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import ColumnElement, Table, delete, false, or_, select
from sqlalchemy.orm import Session

from relance.db.base import Base


def _doomed(
    table: Table, ids: Collection[int], memo: dict[str, ColumnElement[bool]]
) -> ColumnElement[bool]:
    """The condition selecting the rows of `table` that belong to the debtors `ids`."""
    if table.name in memo:
        return memo[table.name]
    memo[table.name] = false()  # breaks reference cycles: a row reached twice is still reached
    conditions: list[ColumnElement[bool]] = []
    if table.name == "debtors":
        conditions.append(table.c.id.in_(ids))
    if "debtor_id" in table.c:
        conditions.append(table.c.debtor_id.in_(ids))
    for fk in table.foreign_keys:
        parent = fk.column.table
        if parent is table or not isinstance(parent, Table):
            continue
        conditions.append(fk.parent.in_(select(fk.column).where(_doomed(parent, ids, memo))))
    memo[table.name] = or_(false(), *conditions)
    return memo[table.name]


def purge_debtors(session: Session, ids: Collection[int]) -> None:
    """Delete the debtors `ids` and everything that refers to them, children first; commits."""
    ids = list(ids)
    if not ids:
        return
    memo: dict[str, ColumnElement[bool]] = {}
    for table in Base.metadata.sorted_tables:
        _doomed(table, ids, memo)
    for table in reversed(Base.metadata.sorted_tables):
        session.execute(delete(table).where(memo[table.name]))
    session.commit()
