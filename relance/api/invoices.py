"""`GET /invoices` and `POST /invoices/import`.

The import is all-or-nothing: `relance.portfolio.importer` validates every row before writing,
and any problem answers 422 with the row numbers and nothing stored. How the body is read and
pre-checked (JSON, multipart CSV, raw CSV) is in `import_body.py`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from relance.api import views
from relance.api.auth import Caller
from relance.api.import_body import IMPORT_BODY, ImportBody, ImportPayload
from relance.api.pagination import IdFilter, Limit, Offset, SearchText, like_pattern, paginate
from relance.api.schemas import (
    ErrorOut,
    ImportRejected,
    ImportResult,
    InvoiceOut,
    Page,
    RowProblems,
)
from relance.db.models import Invoice
from relance.db.models.enums import InvoiceStatus
from relance.errors import Conflict
from relance.web.deps import DbSession
from relance.web.errors import PROBLEM_JSON, problem

router = APIRouter(tags=["invoices"])


@router.get("/invoices", response_model=Page[InvoiceOut])
def list_invoices(
    db: DbSession,
    _caller: Caller,
    limit: Limit = 50,
    offset: Offset = 0,
    debtor_id: IdFilter = None,
    status: Annotated[InvoiceStatus | None, Query()] = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
    due_before: Annotated[date | None, Query(description="Due strictly before this date")] = None,
    due_after: Annotated[date | None, Query(description="Due strictly after this date")] = None,
    q: SearchText = None,
) -> Page[InvoiceOut]:
    """Invoices by id; `q` matches the invoice number."""
    stmt = select(Invoice).order_by(Invoice.id)
    if debtor_id is not None:
        stmt = stmt.where(Invoice.debtor_id == debtor_id)
    if status:
        stmt = stmt.where(Invoice.status == status)
    if currency:
        stmt = stmt.where(Invoice.currency == currency)
    if due_before:
        stmt = stmt.where(Invoice.due_date < due_before)
    if due_after:
        stmt = stmt.where(Invoice.due_date > due_after)
    if q:
        stmt = stmt.where(Invoice.number.ilike(like_pattern(q), escape="\\"))
    return paginate(db, stmt, limit, offset, views.invoice)


@router.post(
    "/invoices/import",
    status_code=201,
    response_model=ImportResult,
    responses={
        400: {"model": ErrorOut},
        409: {"model": ErrorOut},
        413: {"model": ErrorOut},
        415: {"model": ErrorOut},
        422: {"model": ImportRejected},
    },
    openapi_extra=IMPORT_BODY,
)
def import_invoices(db: DbSession, caller: Caller, payload: ImportBody) -> Any:
    """Import debtors + invoices. Every row is checked; one bad row and nothing is stored."""
    from relance.portfolio.importer import import_rows

    if payload.problems:
        return _rejected(db, payload, payload.problems)
    try:
        report = import_rows(db, payload.rows, actor=caller.actor)
    except IntegrityError:
        db.rollback()
        raise Conflict(
            "conflict", "Another import wrote the same rows at the same time; retry"
        ) from None
    if not report.ok:
        # importer lines count the CSV header as line 1
        return _rejected(db, payload, {line - 1: msgs for line, msgs in report.errors.items()})
    return ImportResult(
        rows=report.rows,
        debtors_created=report.debtors_created,
        invoices_created=report.invoices_created,
        invoices_unchanged=report.invoices_unchanged,
        warnings=report.warnings,
    )


def _rejected(
    db: DbSession, payload: ImportPayload, problems: dict[int, list[str]]
) -> JSONResponse:
    db.rollback()  # all-or-nothing, even if a row was flushed before the problem surfaced
    rows = [
        RowProblems(row=row, line=row + 1 if payload.csv else None, problems=msgs)
        for row, msgs in sorted(problems.items())
    ]
    body = ImportRejected(
        **problem(422, "invalid_rows", f"Nothing was imported: {len(rows)} row(s) have problems"),
        rows=rows,
    )
    return JSONResponse(
        status_code=422, content=body.model_dump(mode="json"), media_type=PROBLEM_JSON
    )
