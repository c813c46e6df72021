"""Admin pages for the creditor's finance stack: e-invoice upload with a per-file report, and
outbound webhooks (endpoints, their one-time secret, the delivery log).

Admin only. The work is in `relance.einvoice` and `relance.outbox`; these pages only read the
form and show the outcome. A webhook secret is shown once, on the page answering its creation or
rotation, and never again (the list shows only the endpoint's URL and events; the database holds
it encrypted).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.concurrency import run_in_threadpool

from console.web import PREFIX, ConsoleRoute, redirect, render
from relance.auth.deps import AdminUser, CsrfChecked, actor_of
from relance.einvoice.bundle import Source, expand
from relance.einvoice.service import import_sources
from relance.errors import RelanceError
from relance.outbox import service as outbox
from relance.web.deps import DbSession
from relance.web.ids import RowId

router = APIRouter(route_class=ConsoleRoute)
MAX_UPLOADS = 50


@router.get("/einvoices", name="admin_einvoices")
def einvoices_page(request: Request, user: AdminUser) -> Response:
    return render(request, "admin_einvoices.html", {"section": "einvoices", "report": None})


@router.post("/einvoices", dependencies=[CsrfChecked])
async def upload_einvoices(request: Request, db: DbSession, user: AdminUser) -> Response:
    form = await request.form(max_files=MAX_UPLOADS)
    sources: list[Source] = []
    for upload in form.getlist("files"):
        if isinstance(upload, str) or not upload.filename:
            continue
        sources.extend(expand(upload.filename, await upload.read()))
    if not sources:
        return render(
            request,
            "admin_einvoices.html",
            {"section": "einvoices", "report": None, "error": "Choose at least one file."},
            status_code=422,
        )
    report = await run_in_threadpool(import_sources, db, sources, actor=actor_of(user))
    return render(
        request,
        "admin_einvoices.html",
        {"section": "einvoices", "report": report},
        status_code=200 if report.ok else 422,
    )


def _webhooks_context(db: DbSession, **extra: object) -> dict[str, object]:
    return {
        "section": "webhooks",
        "endpoints": outbox.endpoints(db),
        "deliveries": outbox.recent_deliveries(db),
        "events": outbox.EVENTS,
        **extra,
    }


@router.get("/webhooks", name="admin_webhooks")
def webhooks_page(request: Request, db: DbSession, user: AdminUser) -> Response:
    return render(request, "admin_webhooks.html", _webhooks_context(db))


@router.post("/webhooks", dependencies=[CsrfChecked])
def create_webhook(
    request: Request,
    db: DbSession,
    user: AdminUser,
    url: Annotated[str, Form(max_length=500)],
    description: Annotated[str, Form(max_length=200)] = "",
    events: Annotated[list[str] | None, Form()] = None,
) -> Response:
    try:
        created = outbox.create_endpoint(
            db, url=url, events=events or [], description=description, actor=actor_of(user)
        )
    except RelanceError as exc:
        db.rollback()
        return render(request, "admin_webhooks.html", _webhooks_context(db, error=exc.message), 422)
    return render(
        request,
        "admin_webhooks.html",
        _webhooks_context(db, new_secret=created.secret, new_endpoint=created.endpoint),
    )


@router.post("/webhooks/{endpoint_id}/secret", dependencies=[CsrfChecked])
def rotate_webhook_secret(
    request: Request, db: DbSession, user: AdminUser, endpoint_id: RowId
) -> Response:
    """A leaked or lost secret is replaced here; the new one is shown once, like at creation."""
    rotated = outbox.rotate_secret(db, endpoint_id, actor=actor_of(user))
    return render(
        request,
        "admin_webhooks.html",
        _webhooks_context(db, new_secret=rotated.secret, new_endpoint=rotated.endpoint),
    )


@router.post("/webhooks/{endpoint_id}/active", dependencies=[CsrfChecked])
def toggle_webhook(
    request: Request,
    db: DbSession,
    user: AdminUser,
    endpoint_id: RowId,
    active: Annotated[bool, Form()],
) -> Response:
    outbox.set_active(db, endpoint_id, active=active, actor=actor_of(user))
    return redirect(request, f"{PREFIX}/admin/webhooks")
