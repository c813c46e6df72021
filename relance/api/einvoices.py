"""`POST /invoices/import-einvoices`: Factur-X PDFs, UBL or CII XML, or zip archives of them.

Multipart, one or more `file` fields. Each document is imported all-or-nothing
(`relance.einvoice.service`); the answer lists every file with its outcome and, for a rejected
one, each problem with the e-invoice field it concerns. 201 when every file went in, 422 when
at least one was rejected (the others are kept: files are independent). The body limit
(`EINVOICE_MAX_BODY_BYTES`, larger than the API's default) answers 413 before anything is read.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from relance.api.auth import Caller
from relance.api.schemas import ErrorOut
from relance.einvoice.bundle import Source, expand
from relance.einvoice.service import EInvoiceReport, import_sources
from relance.errors import BadInput, InvalidContent
from relance.web.deps import DbSession

router = APIRouter(tags=["invoices"])
EINVOICE_PATH = "/api/v1/invoices/import-einvoices"
EINVOICE_MAX_BODY_BYTES = 20 * 1024 * 1024
MAX_UPLOADS = 50


class FieldProblem(BaseModel):
    field: str = Field(description="The e-invoice field concerned (EN 16931 business term)")
    message: str


class FileOutcome(BaseModel):
    name: str
    status: str = Field(description="created, updated, unchanged, credited or rejected")
    format: str
    profile: str
    invoice_number: str
    problems: list[FieldProblem]
    warnings: list[str]


class EInvoiceImportOut(BaseModel):
    created: int
    updated: int
    unchanged: int
    credited: int
    rejected: int
    files: list[FileOutcome]


def report_out(report: EInvoiceReport) -> EInvoiceImportOut:
    return EInvoiceImportOut(
        created=report.count("created"),
        updated=report.count("updated"),
        unchanged=report.count("unchanged"),
        credited=report.count("credited"),
        rejected=report.count("rejected"),
        files=[
            FileOutcome(
                name=f.name,
                status=f.status,
                format=f.format,
                profile=f.profile,
                invoice_number=f.invoice_number,
                problems=[FieldProblem(field=p.field, message=p.message) for p in f.problems],
                warnings=f.warnings,
            )
            for f in report.files
        ],
    )


async def read_uploads(request: Request) -> list[Source]:
    """The uploaded files, zip archives expanded (within their limits)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != (
        "multipart/form-data"
    ):
        raise BadInput("multipart_required", "Send the e-invoices as multipart 'file' fields")
    try:
        form = await request.form(max_files=MAX_UPLOADS, max_fields=MAX_UPLOADS)
    except Exception as exc:  # malformed multipart, too many files
        raise BadInput("malformed_body", f"The multipart body cannot be read: {exc}") from exc
    sources: list[Source] = []
    for upload in form.getlist("file"):
        if isinstance(upload, str):
            raise InvalidContent("file_required", "Each 'file' field must be a file upload")
        sources.extend(expand(upload.filename or "upload", await upload.read()))
    if not sources:
        raise InvalidContent("file_required", "Send at least one file field named 'file'")
    return sources


@router.post(
    "/invoices/import-einvoices",
    status_code=201,
    response_model=EInvoiceImportOut,
    responses={
        400: {"model": ErrorOut},
        413: {"model": ErrorOut},
        422: {"model": EInvoiceImportOut},
    },
)
async def import_einvoices(request: Request, db: DbSession, caller: Caller) -> Any:
    """Import e-invoices; a rejected file changes nothing, and is listed with its problems."""
    sources = await read_uploads(request)
    # The import is synchronous database work: off the event loop. The request's unit of work
    # commits what went in (files are independent; a rejected one left nothing behind).
    report = await run_in_threadpool(import_sources, db, sources, actor=caller.actor)
    body = report_out(report)
    if report.ok:
        return body
    return JSONResponse(status_code=422, content=body.model_dump(mode="json"))
