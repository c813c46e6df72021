"""`GET /letters`: formal letters (mise en demeure) queued or sent."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from relance.api import views
from relance.api.auth import Caller
from relance.api.pagination import IdFilter, Limit, Offset, paginate
from relance.api.schemas import LetterOut, Page
from relance.db.models import Letter
from relance.db.models.enums import LetterStatus
from relance.web.deps import DbSession

router = APIRouter(tags=["letters"])


@router.get("/letters", response_model=Page[LetterOut])
def list_letters(
    db: DbSession,
    _caller: Caller,
    limit: Limit = 50,
    offset: Offset = 0,
    debtor_id: IdFilter = None,
    status: Annotated[LetterStatus | None, Query()] = None,
    kind: Annotated[str | None, Query(max_length=32, pattern=r"^[a-z_]+$")] = None,
) -> Page[LetterOut]:
    stmt = select(Letter).order_by(Letter.id)
    if debtor_id is not None:
        stmt = stmt.where(Letter.debtor_id == debtor_id)
    if status:
        stmt = stmt.where(Letter.status == status)
    if kind:
        stmt = stmt.where(Letter.kind == kind)
    return paginate(db, stmt, limit, offset, views.letter)
