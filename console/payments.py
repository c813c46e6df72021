"""Payments to review: money received that did not match its payment link (wrong amount, currency
or debtor). Each is recorded but settles nothing until a collector applies it to the debtor's
account or closes it with what happened (refunded, returned). See relance/ledger/review.py.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request, Response

from console.web import PREFIX, ConsoleRoute, Page, redirect, render
from relance.auth.deps import CsrfChecked, CurrentUser, actor_of
from relance.errors import NotFound
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


@router.get("/payments/review", name="payment_reviews")
def payment_reviews_page(
    request: Request,
    db: DbSession,
    user: CurrentUser,
    status: str = review.OPEN,
    done: str = "",
    error: str = "",
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
) -> Response:
    status = status if status in TABS else review.OPEN
    counts = review.count_reviews(db)
    pager = Page(counts.get(status, 0), page)
    rows = review.list_reviews(db, status=status, offset=pager.offset, limit=pager.size)
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
            "filters": {"status": status},
            "reasons": REASONS,
            "notice": NOTICES.get(done, ""),
            "error": error[:300],
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
    except review.ReviewError as exc:
        query = urlencode({"status": review.OPEN, "error": f"Payment #{held.payment_id}: {exc}"})
        return redirect(request, f"{PREFIX}/payments/review?{query}")
    return redirect(request, f"{PREFIX}/payments/review?done={held.resolution}")
