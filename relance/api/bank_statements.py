"""`POST /payments/bank-statements`: reconcile a camt.053 or MT940 file; `GET /payments/bank-lines`
lists the credits waiting for a person.

The body is the file itself (`application/xml`, `text/plain`…) or a multipart upload in a field
named `file`. Size is capped by `BANK_STATEMENT_MAX_BYTES` (the app's body-size middleware gives
this path that ceiling instead of the default 256 KiB). Every refusal is a 4xx problem document
and stores nothing: 400 empty or too large, 409 imported before, 415 another media type, 422 a bad
file with its per-line errors in `errors`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from relance.api.auth import Caller
from relance.api.pagination import Limit, Offset
from relance.api.schemas import ErrorOut
from relance.bank_statements import service
from relance.bank_statements.matching import REVIEW
from relance.errors import BadInput, InvalidContent, UnsupportedMediaType
from relance.web.deps import DbSession

router = APIRouter(tags=["payments"])
PATH = "/payments/bank-statements"
RAW_TYPES = ("application/xml", "text/xml", "text/plain", "application/octet-stream")


class StatementImported(BaseModel):
    statement_ids: list[int]
    lines: int
    credits: int
    matched: int
    review: int
    already_imported: int
    matched_by_rule: dict[str, int]
    paid_invoice_ids: list[int]


class BankLineOut(BaseModel):
    id: int
    statement_id: int
    booking_date: date
    amount_minor: int
    currency: str
    payer_name: str | None
    payer_iban: str | None
    remittance: str | None
    status: str
    reason: str | None
    suggested_debtor_id: int | None


async def read_statement(request: Request) -> tuple[bytes, str | None]:
    """The file's bytes and name, from a raw body or a multipart `file` field."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        try:
            form = await request.form(max_files=1, max_fields=5)
        except Exception as exc:  # malformed multipart
            raise BadInput("malformed_body", "The multipart body cannot be parsed") from exc
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidContent("file_required", "Send the statement as a file field named 'file'")
        return await upload.read(), upload.filename
    if kind in RAW_TYPES:
        return await request.body(), None
    raise UnsupportedMediaType(
        "unsupported_media_type",
        "Send the camt.053 or MT940 file as the body (application/xml, text/plain) "
        "or as a multipart 'file' upload",
    )


Upload = Annotated[tuple[bytes, str | None], Depends(read_statement)]


@router.post(
    PATH,
    status_code=201,
    response_model=StatementImported,
    responses={
        400: {"model": ErrorOut},
        409: {"model": ErrorOut},
        413: {"model": ErrorOut},
        415: {"model": ErrorOut},
        422: {"model": ErrorOut},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/xml": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
            },
        }
    },
)
def import_bank_statement(db: DbSession, caller: Caller, upload: Upload) -> StatementImported:
    """Import a camt.053 or MT940 statement: all or nothing, never twice."""
    data, filename = upload
    report = service.import_statement(db, data, actor=caller.actor, filename=filename)
    return StatementImported(
        statement_ids=report.statement_ids,
        lines=report.lines,
        credits=report.credits,
        matched=report.matched,
        review=report.review,
        already_imported=report.already_imported,
        matched_by_rule=report.by_rule,
        paid_invoice_ids=report.paid_invoice_ids,
    )


@router.get("/payments/bank-lines", response_model=list[BankLineOut])
def list_bank_lines(
    db: DbSession,
    _caller: Caller,
    limit: Limit = 50,
    offset: Offset = 0,
    status: Annotated[str, Query(pattern="^(review|resolved)$")] = REVIEW,
) -> list[BankLineOut]:
    """Credits of imported statements waiting for a person (or, `resolved`, decided)."""
    return [
        BankLineOut(
            id=e.id,
            statement_id=e.statement_id,
            booking_date=e.booking_date,
            amount_minor=e.amount_minor,
            currency=e.currency,
            payer_name=e.payer_name,
            payer_iban=e.payer_iban,
            remittance=e.remittance,
            status=e.status,
            reason=e.reason,
            suggested_debtor_id=e.debtor_id,
        )
        for e in service.list_review(db, status=status, offset=offset, limit=limit)
    ]
