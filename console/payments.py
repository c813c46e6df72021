"""Payments to review: money received that did not match its payment link (wrong amount, currency
or debtor). Each is recorded but settles nothing until a collector applies it to the debtor's
account or closes it with what happened (refunded, returned). See relance/ledger/review.py.

The same page takes bank statements (camt.053, MT940; relance/bank_statements): the upload form
imports a file all-or-nothing, and the credits no rule could match are listed for a collector to
assign to a debtor (recorded like any payment) or dismiss with a note.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Path, Query, Request, Response, UploadFile

from console.web import PREFIX, ConsoleRoute, Page, redirect, render
from relance.auth.deps import CsrfChecked, CurrentUser, actor_of
from relance.bank_statements import service as bank
from relance.bank_statements.matching import REVIEW as BANK_REVIEW
from relance.errors import NotFound, RelanceError
from relance.ledger import review
from relance.ledger.models import PaymentReview
from relance.web.deps import DbSession

router = APIRouter(route_class=ConsoleRoute)
TABS = {review.OPEN: "To review", review.RESOLVED: "Reviewed"}
NOTICES = {
    review.APPLIED: "Payment applied to the debtor's account.",
    review.CLOSED: "Review closed; the payment stays recorded and settles nothing.",
}
REASONS = {
    "amount": "amount differs from the link",
    "currency": "currency differs from the link",
    "debtor": "paid for another debtor than the link's",
}
ReviewId = Annotated[int, Path(ge=1, le=2**31 - 1)]
BANK_PAGE = 100


@router.get("/payments/review", name="payment_reviews")
def payment_reviews_page(
    request: Request,
    db: DbSession,
    user: CurrentUser,
    status: str = review.OPEN,
    done: str = "",
    error: str = "",
    imported: str = "",
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    bank_page: Annotated[int, Query(ge=1, le=100000)] = 1,
) -> Response:
    status = status if status in TABS else review.OPEN
    counts = review.count_reviews(db)
    pager = Page(counts.get(status, 0), page)
    rows = review.list_reviews(db, status=status, offset=pager.offset, limit=pager.size)
    bank_counts = bank.count_review(db)
    # The statement lines have their own pages: a large statement's unmatched credits used to
    # stop at the first hundred, with nothing saying more were waiting.
    bank_pager = Page(bank_counts.get(BANK_REVIEW, 0), bank_page, BANK_PAGE, "bank_page")
    bank_lines = bank.list_review(
        db, status=BANK_REVIEW, offset=bank_pager.offset, limit=bank_pager.size
    )
    return render(
        request,
        "payment_reviews.html",
        {
            "section": "payments",
            "rows": rows,
            "status": status,
            "tabs": TABS,
            "counts": counts,
            "pager": pager,
            "filters": {"status": status, "bank_page": bank_pager.number},
            "bank_pager": bank_pager,
            "bank_filters": {"status": status, "page": pager.number},
            "reasons": REASONS,
            "notice": NOTICES.get(done, "") or imported[:300],
            "error": error[:300],
            "bank_lines": bank_lines,
            "bank_waiting": bank_counts.get(BANK_REVIEW, 0),
        },
    )


@router.post("/payments/review/{review_id}", dependencies=[CsrfChecked])
def resolve_payment_review(
    request: Request,
    db: DbSession,
    user: CurrentUser,
    review_id: ReviewId,
    decision: Annotated[str, Form(pattern="^(apply|close)$")],
    note: Annotated[str, Form(max_length=review.MAX_NOTE_LENGTH)] = "",
) -> Response:
    held = db.get(PaymentReview, review_id)
    if held is None:
        raise NotFound("payment_review_not_found", "This payment review does not exist (any more).")
    try:
        review.resolve(db, held, apply=decision == "apply", actor=actor_of(user), note=note)
    except RelanceError as exc:  # shown on the review list the collector came from
        query = urlencode(
            {"status": review.OPEN, "error": f"Payment #{held.payment_id}: {exc.message}"}
        )
        return redirect(request, f"{PREFIX}/payments/review?{query}")
    return redirect(request, f"{PREFIX}/payments/review?done={held.resolution}")


@router.post("/payments/bank-statements", dependencies=[CsrfChecked])
def upload_bank_statement(
    request: Request,
    db: DbSession,
    user: CurrentUser,
    file: Annotated[UploadFile, File()],
) -> Response:
    """Import a camt.053 / MT940 file; the outcome (or every line's error) shows on the page."""
    try:
        report = bank.import_statement(
            db, file.file.read(), actor=actor_of(user), filename=file.filename
        )
    except RelanceError as exc:
        db.rollback()
        lines = exc.details.get("errors", [])
        shown = "; ".join(
            f"line {p['line']}: {p['error']}" if p["line"] else str(p["error"]) for p in lines[:5]
        )
        query = urlencode({"error": f"{file.filename}: {shown or exc.message}"})
        return redirect(request, f"{PREFIX}/payments/review?{query}")
    summary = (
        f"{file.filename}: {report.credits} credits, {report.matched} matched and recorded, "
        f"{report.review} to review, {report.already_imported} already imported."
    )
    return redirect(request, f"{PREFIX}/payments/review?{urlencode({'imported': summary})}")


@router.post("/payments/bank-lines/{entry_id}", dependencies=[CsrfChecked])
def resolve_bank_line(
    request: Request,
    db: DbSession,
    user: CurrentUser,
    entry_id: ReviewId,
    decision: Annotated[str, Form(pattern="^(assign|dismiss)$")],
    customer_number: Annotated[str, Form(max_length=64)] = "",
    invoice_number: Annotated[str, Form(max_length=64)] = "",
    note: Annotated[str, Form(max_length=bank.MAX_NOTE_LENGTH)] = "",
) -> Response:
    try:
        if decision == "assign":
            bank.assign(
                db,
                entry_id,
                actor=actor_of(user),
                customer_number=customer_number,
                invoice_number=invoice_number,
                note=note,
            )
            done = "Bank line recorded as the debtor's payment."
        else:
            bank.dismiss(db, entry_id, actor=actor_of(user), note=note)
            done = "Bank line dismissed; nothing was recorded."
    except RelanceError as exc:
        db.rollback()
        query = urlencode({"error": f"Bank line #{entry_id}: {exc.message}"})
        return redirect(request, f"{PREFIX}/payments/review?{query}")
    return redirect(request, f"{PREFIX}/payments/review?{urlencode({'imported': done})}")
