"""`GET /debtors/{id}/export` and `POST /debtors/{id}/erase`: a debtor's GDPR requests.

Admin only: the token must belong to an active admin user (`relance token create NAME --user
EMAIL`). A service token with no user, or a collector's token, gets 403: a bulk integration has
no business reading or destroying a whole file. Both actions are audited (relance.privacy).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from relance.api.auth import ApiCaller, Caller
from relance.api.schemas import MAX_ID, ErrorOut
from relance.db.models import ApiToken, Debtor, User
from relance.db.models.enums import Role
from relance.errors import Forbidden, InvalidContent, NotFound
from relance.privacy import erasure, export
from relance.web.deps import DbSession

router = APIRouter(tags=["privacy"])
DebtorId = Annotated[int, Path(ge=1, le=MAX_ID)]
ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorOut},
    404: {"model": ErrorOut},
    409: {"model": ErrorOut},
}


def require_admin_token(db: DbSession, caller: Caller) -> ApiCaller:
    token = db.get(ApiToken, caller.token_id)
    user = db.get(User, token.user_id) if token is not None and token.user_id else None
    if user is None or not user.active or user.role != Role.ADMIN:
        raise Forbidden(
            "admin_required", "Only a token of an admin user may export or erase a debtor"
        )
    return caller


AdminCaller = Annotated[ApiCaller, Depends(require_admin_token)]


class ErasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)
    confirm_customer_number: str = Field(
        max_length=64, description="The debtor's customer number, as a confirmation"
    )
    force: bool = Field(
        default=False, description="Erase even with an open balance or an open dispute"
    )


class ErasureOut(BaseModel):
    debtor_id: int
    customer_number: str
    forced: bool
    overridden: list[str]
    counts: dict[str, int]
    tracker_events: int
    leftovers: dict[str, int]


def _debtor(db: DbSession, debtor_id: int) -> Debtor:
    debtor = db.get(Debtor, debtor_id)
    if debtor is None:
        raise NotFound("debtor_not_found", f"No debtor with id {debtor_id}")
    return debtor


@router.get("/debtors/{debtor_id}/export", responses=ERRORS)
def export_debtor(db: DbSession, caller: AdminCaller, debtor_id: DebtorId) -> dict[str, Any]:
    """Everything held about the debtor, machine-readable (rows of every related table)."""
    import hashlib
    import json

    debtor = _debtor(db, debtor_id)
    document = export.export_data(db, debtor, actor=caller.actor)
    digest = hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()
    counts = {name: len(rows) for name, rows in document["tables"].items()}
    export.record_export(db, debtor, actor=caller.actor, sha256=digest, counts=counts, form="json")
    return document


@router.post("/debtors/{debtor_id}/erase", response_model=ErasureOut, responses=ERRORS)
def erase_debtor(
    db: DbSession, caller: AdminCaller, debtor_id: DebtorId, body: ErasureRequest
) -> ErasureOut:
    """Pseudonymise the debtor (personal data and conversations go, the accounts stay).

    409 `erasure_refused` while a balance is open or a dispute is open, unless `force` (its
    `blockers` member lists them); 422 `reason_required` for a blank reason.
    """
    debtor = _debtor(db, debtor_id)
    if body.confirm_customer_number.strip() != debtor.customer_number:
        raise InvalidContent("confirmation_mismatch", "confirm_customer_number does not match")
    report = erasure.erase(db, debtor, actor=caller.actor, reason=body.reason, force=body.force)
    return ErasureOut(
        debtor_id=report.debtor_id,
        customer_number=report.customer_number,
        forced=report.forced,
        overridden=report.blockers,
        counts=report.counts,
        tracker_events=report.tracker_events,
        leftovers=report.leftovers,
    )
