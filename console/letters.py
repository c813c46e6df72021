"""Letters to post: formal notices queued by the dunning run, waiting for someone to take them to
the post office as registered mail and type in the tracking number (proof of sending for court).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import FileResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from console.web import PREFIX, ConsoleRoute, Page, is_htmx, redirect, render
from relance.auth.deps import CsrfChecked, CurrentUser, actor_of
from relance.db.models import Debtor, Invoice, Letter
from relance.errors import NotFound, RelanceError
from relance.letters.service import mark_posted, reference_for
from relance.web.deps import DbSession
from relance.web.ids import RowId

router = APIRouter(route_class=ConsoleRoute)
TABS = {"queued": "To post", "sent": "Posted"}
NOTICES = {"posted": "Letter marked posted; the tracking number is kept as proof of sending."}


@dataclass
class LetterRow:
    letter: Letter
    debtor: Debtor
    invoice_numbers: list[str]
    reference: str
    error: str = ""
    entered: str = ""  # what was typed, kept in the field when it was refused

    @property
    def total_minor(self) -> int:
        return (
            self.letter.principal_minor + self.letter.interest_minor + self.letter.indemnity_minor
        )


def _rows(db: Session, letters: list[tuple[Letter, Debtor]]) -> list[LetterRow]:
    wanted = {i for letter, _ in letters for i in (letter.invoice_ids or [])}
    numbers = (
        dict(db.execute(select(Invoice.id, Invoice.number).where(Invoice.id.in_(wanted))).all())
        if wanted
        else {}
    )
    return [
        LetterRow(
            letter,
            debtor,
            [numbers.get(i, f"#{i}") for i in letter.invoice_ids or []],
            reference_for(letter),
        )
        for letter, debtor in letters
    ]


def _row(db: Session, letter_id: int) -> LetterRow:
    found = db.execute(
        select(Letter, Debtor)
        .join(Debtor, Debtor.id == Letter.debtor_id)
        .where(Letter.id == letter_id)
    ).first()
    if found is None:
        raise NotFound("letter_not_found", "This letter does not exist (any more).")
    return _rows(db, [found])[0]


def _counts(db: Session) -> dict[str, int]:
    return dict(
        db.execute(
            select(Letter.status, func.count())
            .where(Letter.status.in_(list(TABS)))
            .group_by(Letter.status)
        ).all()
    )


@router.get("/letters", name="letters")
def letters_page(
    request: Request,
    db: DbSession,
    user: CurrentUser,
    status: str = "queued",
    done: str = "",
    error: str = "",
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
) -> Response:
    status = status if status in TABS else "queued"
    counts = _counts(db)
    pager = Page(counts.get(status, 0), page)
    # Oldest first while waiting (post them in order); most recently posted first once posted.
    order = Letter.created_at.asc() if status == "queued" else Letter.sent_at.desc()
    letters = db.execute(
        select(Letter, Debtor)
        .join(Debtor, Debtor.id == Letter.debtor_id)
        .where(Letter.status == status)
        .order_by(order, Letter.id)
        .offset(pager.offset)
        .limit(pager.size)
    ).all()
    return render(
        request,
        "letters.html",
        {
            "section": "letters",
            "rows": _rows(db, list(letters)),
            "status": status,
            "tabs": TABS,
            "counts": counts,
            "pager": pager,
            "filters": {"status": status},
            "notice": NOTICES.get(done, ""),
            "error": error[:300],
        },
    )


@router.get("/letters/{letter_id}/pdf", name="letter_pdf")
def letter_pdf(db: DbSession, user: CurrentUser, letter_id: RowId) -> Response:
    letter = db.get(Letter, letter_id)
    path = Path(letter.pdf_path) if letter is not None and letter.pdf_path else None
    if letter is None or path is None or not path.is_file():
        raise NotFound("letter_pdf_not_found", "This letter has no PDF (any more).")
    return FileResponse(path, media_type="application/pdf", filename=f"{reference_for(letter)}.pdf")


@router.post("/letters/{letter_id}/posted", dependencies=[CsrfChecked])
def mark_letter_posted(
    request: Request,
    db: DbSession,
    user: CurrentUser,
    letter_id: RowId,
    tracking_number: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    row = _row(db, letter_id)
    try:
        mark_posted(db, row.letter, tracking_number, actor=actor_of(user))
    except RelanceError as exc:  # invalid_tracking_number, or letter_not_queued:
        # someone else posted (or cancelled) it meanwhile; show the row as it is now.
        row = _row(db, letter_id)
        row.error, row.entered = exc.message, tracking_number
        if is_htmx(request):
            return render(request, "_letter_row.html", {"row": row})
        query = urlencode({"status": "queued", "error": f"{row.reference}: {exc.message}"})
        return redirect(request, f"{PREFIX}/letters?{query}")
    if is_htmx(request):
        # The row swaps in place; the tab counts follow out of band.
        db.flush()
        return render(
            request,
            "_letter_row.html",
            {"row": row, "just_posted": True, "tabs": TABS, "oob_counts": _counts(db)},
        )
    return redirect(request, f"{PREFIX}/letters?done=posted")
