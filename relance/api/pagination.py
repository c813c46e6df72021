"""Limit/offset pagination shared by every list endpoint.

Lists are ordered by id, so a page is stable while rows are only appended; `next_offset` is null
on the last page. Bounds on every query parameter keep absurd values (huge offsets, 64-bit ids)
from ever reaching the database driver.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar, TypeVarTuple, overload

from fastapi import Query
from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import Session

from relance.api.schemas import MAX_ID, Page

Limit = Annotated[int, Query(ge=1, le=200, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Rows to skip")]
R = TypeVar("R")
E = TypeVar("E")
Columns = TypeVarTuple("Columns")
IdFilter = Annotated[int | None, Query(ge=1, le=MAX_ID)]
SearchText = Annotated[
    str | None,
    Query(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$", description="Search text"),
]


@overload
def paginate(
    db: Session,
    stmt: Select[E],
    limit: int,
    offset: int,
    convert: Callable[[E], R],
    *,
    scalars: Literal[True] = True,
) -> Page[R]: ...


@overload
def paginate(
    db: Session,
    stmt: Select[*Columns],
    limit: int,
    offset: int,
    convert: Callable[[Row[*Columns]], R],
    *,
    scalars: Literal[False],
) -> Page[R]: ...


def paginate(
    db: Session,
    stmt: Select[*tuple[Any, ...]],
    limit: int,
    offset: int,
    convert: Callable[[Any], R],
    *,
    scalars: bool = True,
) -> Page[R]:
    """Run `stmt` for one page plus a count of every matching row: `convert` gets each entity
    (`scalars=True`, one-entity selects) or each row (`scalars=False`)."""
    total = db.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    page = stmt.limit(limit).offset(offset)
    rows = db.scalars(page).all() if scalars else db.execute(page).all()
    items = [convert(row) for row in rows]
    end = offset + len(items)
    return Page(
        items=items,
        total=total,
        limit=limit,
        offset=offset,
        next_offset=end if end < total and items else None,
    )


def like_pattern(text: str) -> str:
    """`%text%` with LIKE wildcards in the user's text taken literally (escape char: backslash)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
