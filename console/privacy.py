"""Admin pages for a debtor's GDPR requests: find the debtor, download the export, erase.

Admin only (collectors get the 403 page). Erasure asks for the reason and for the customer
number typed again, and says plainly what blocks it; the work itself is `relance.privacy`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import Response as RawResponse

from console.web import PREFIX, ConsoleRoute, redirect, render
from relance.auth.deps import AdminUser, CsrfChecked, actor_of
from relance.db.models import Debtor
from relance.errors import NotFound, RelanceError
from relance.privacy import erasure, export
from relance.privacy.repository import find_debtor
from relance.web.deps import DbSession
from relance.web.ids import RowId

router = APIRouter(route_class=ConsoleRoute)
NOTICES = {"erased": "Personal data erased. The accounting records are kept."}


def _context(db: DbSession, ref: str, debtor: Debtor | None, **extra: object) -> dict[str, object]:
    return {
        "section": "privacy",
        "ref": ref,
        "debtor": debtor,
        "blockers": erasure.blockers(db, debtor) if debtor is not None else [],
        "erased": erasure.is_erased(db, debtor.id) if debtor is not None else False,
        **extra,
    }


@router.get("/privacy", name="admin_privacy")
def privacy_page(
    request: Request, db: DbSession, user: AdminUser, ref: str = "", done: str = ""
) -> Response:
    ref = ref.strip()[:64]
    debtor, problem = None, ""
    if ref:
        try:
            debtor = find_debtor(db, ref)
        except NotFound as exc:  # the search form stays, with the reason
            problem = exc.message
    return render(
        request,
        "admin_privacy.html",
        _context(
            db,
            ref,
            debtor,
            problems=[problem] if problem else [],
            notice=NOTICES.get(done, ""),
        ),
        status_code=404 if problem else 200,
    )


def _debtor(db: DbSession, debtor_id: int) -> Debtor:
    debtor = db.get(Debtor, debtor_id)
    if debtor is None:
        raise NotFound("debtor_not_found", "This debtor does not exist (any more).")
    return debtor


@router.post("/privacy/{debtor_id}/export", dependencies=[CsrfChecked])
def export_zip(db: DbSession, user: AdminUser, debtor_id: RowId) -> Response:
    debtor = _debtor(db, debtor_id)
    data = export.build_export(db, debtor, actor=actor_of(user))
    filename = f"debtor-{debtor.id}-export.zip"
    return RawResponse(
        data,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/privacy/{debtor_id}/erase", dependencies=[CsrfChecked])
async def erase(request: Request, db: DbSession, user: AdminUser, debtor_id: RowId) -> Response:
    debtor = _debtor(db, debtor_id)
    form = await request.form()
    reason = str(form.get("reason") or "").strip()
    confirm = str(form.get("confirm") or "").strip()
    force = form.get("force") == "1"
    problems = []
    if confirm != debtor.customer_number:
        problems.append("Type the customer number exactly to confirm the erasure.")
    if not problems:
        try:
            erasure.erase(db, debtor, actor=actor_of(user), reason=reason, force=force)
        except RelanceError as exc:  # the form is shown again, with its reason, and why
            problems.append(exc.message)
    if problems:
        context = _context(db, debtor.customer_number, debtor, problems=problems, reason=reason)
        return render(request, "admin_privacy.html", context, status_code=422)
    return redirect(request, f"{PREFIX}/admin/privacy?ref={debtor.customer_number}&done=erased")
