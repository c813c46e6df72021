"""`GET /accounting/export`: the collection activity of a period (relance/accounting)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from relance.accounting.export import journal, to_csv, to_json
from relance.api.auth import Caller
from relance.api.schemas import ErrorOut
from relance.web.deps import DbSession

router = APIRouter(tags=["accounting"])


@router.get(
    "/accounting/export",
    responses={
        200: {"content": {"text/csv": {}, "application/json": {}}},
        400: {"model": ErrorOut},
    },
)
def export(
    db: DbSession,
    _caller: Caller,
    start: Annotated[date, Query(alias="from", description="First day (UTC)")],
    end: Annotated[date, Query(alias="to", description="Day after the last (UTC)")],
    format: Annotated[Literal["csv", "json"], Query()] = "csv",
) -> Response:
    """Payments, credit notes, account credits and cancellations of [from, to)."""
    lines = journal(db, start, end)
    if format == "json":
        return Response(to_json(lines, start, end), media_type="application/json")
    name = f"relance-accounting-{start.isoformat()}-{end.isoformat()}.csv"
    return Response(
        to_csv(lines),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
