"""What came out of conversations: disputes, payment plans, promises, handoffs, late reasons.

The only writes are dispute decisions, made by `relance.disputes.service.decide_dispute` (which
reopens or cancels the invoice, closes the review task and audits as `api:<token name>`).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from relance.api import views
from relance.api.auth import ApiCaller, Caller
from relance.api.pagination import IdFilter, Limit, Offset, paginate
from relance.api.schemas import (
    MAX_ID,
    DisputeDecision,
    DisputeOut,
    ErrorOut,
    HandoffOut,
    LatePaymentReasonOut,
    Page,
    PaymentPlanOut,
    PromiseOut,
)
from relance.db.models import (
    Conversation,
    Dispute,
    Handoff,
    LatePaymentReason,
    PaymentPlan,
    Promise,
)
from relance.db.models.enums import DisputeStatus, HandoffStatus, PlanStatus, PromiseStatus
from relance.disputes.service import decide_dispute
from relance.errors import NotFound
from relance.late_reasons import Category
from relance.web.deps import DbSession

router = APIRouter()


@router.get("/disputes", response_model=Page[DisputeOut], tags=["disputes"])
def list_disputes(
    db: DbSession,
    _caller: Caller,
    limit: Limit = 50,
    offset: Offset = 0,
    debtor_id: IdFilter = None,
    invoice_id: IdFilter = None,
    status: Annotated[DisputeStatus | None, Query()] = None,
) -> Page[DisputeOut]:
    stmt = select(Dispute).order_by(Dispute.id)
    if debtor_id is not None:
        stmt = stmt.where(Dispute.debtor_id == debtor_id)
    if invoice_id is not None:
        stmt = stmt.where(Dispute.invoice_id == invoice_id)
    if status:
        stmt = stmt.where(Dispute.status == status)
    return paginate(db, stmt, limit, offset, DisputeOut.model_validate)


DisputeId = Annotated[int, Path(ge=1, le=MAX_ID)]
DECISION_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut},
    409: {"model": ErrorOut},
}


def _decide(
    db: DbSession, caller: ApiCaller, dispute_id: int, decision: DisputeDecision, upheld: bool
) -> DisputeOut:
    dispute = db.get(Dispute, dispute_id, with_for_update=True)
    if dispute is None:
        raise NotFound("dispute_not_found", f"No dispute with id {dispute_id}")
    # Conflict("dispute_closed") when it was decided before
    decide_dispute(db, dispute, upheld=upheld, note=decision.note, actor=caller.actor)
    db.flush()
    return DisputeOut.model_validate(dispute)


@router.post(
    "/disputes/{dispute_id}/resolve",
    response_model=DisputeOut,
    responses=DECISION_ERRORS,
    tags=["disputes"],
)
def resolve_dispute(
    db: DbSession, caller: Caller, dispute_id: DisputeId, decision: DisputeDecision
) -> DisputeOut:
    """Uphold the dispute: the invoice is cancelled and dunning on it stops for good."""
    return _decide(db, caller, dispute_id, decision, upheld=True)


@router.post(
    "/disputes/{dispute_id}/reject",
    response_model=DisputeOut,
    responses=DECISION_ERRORS,
    tags=["disputes"],
)
def reject_dispute(
    db: DbSession, caller: Caller, dispute_id: DisputeId, decision: DisputeDecision
) -> DisputeOut:
    """Reject the dispute: the invoice is open again and dunning resumes."""
    return _decide(db, caller, dispute_id, decision, upheld=False)


@router.get("/payment-plans", response_model=Page[PaymentPlanOut], tags=["payment plans"])
def list_payment_plans(
    db: DbSession,
    _caller: Caller,
    limit: Limit = 50,
    offset: Offset = 0,
    debtor_id: IdFilter = None,
    status: Annotated[PlanStatus | None, Query()] = None,
) -> Page[PaymentPlanOut]:
    stmt = (
        select(PaymentPlan).options(selectinload(PaymentPlan.installments)).order_by(PaymentPlan.id)
    )
    if debtor_id is not None:
        stmt = stmt.where(PaymentPlan.debtor_id == debtor_id)
    if status:
        stmt = stmt.where(PaymentPlan.status == status)
    return paginate(db, stmt, limit, offset, views.plan)


@router.get("/promises", response_model=Page[PromiseOut], tags=["promises"])
def list_promises(
    db: DbSession,
    _caller: Caller,
    limit: Limit = 50,
    offset: Offset = 0,
    debtor_id: IdFilter = None,
    status: Annotated[PromiseStatus | None, Query()] = None,
    due_before: Annotated[date | None, Query(description="Promised strictly before")] = None,
    due_after: Annotated[date | None, Query(description="Promised strictly after")] = None,
) -> Page[PromiseOut]:
    stmt = select(Promise).order_by(Promise.id)
    if debtor_id is not None:
        stmt = stmt.where(Promise.debtor_id == debtor_id)
    if status:
        stmt = stmt.where(Promise.status == status)
    if due_before:
        stmt = stmt.where(Promise.promised_date < due_before)
    if due_after:
        stmt = stmt.where(Promise.promised_date > due_after)
    return paginate(db, stmt, limit, offset, views.promise)


@router.get("/handoffs", response_model=Page[HandoffOut], tags=["handoffs"])
def list_handoffs(
    db: DbSession,
    _caller: Caller,
    limit: Limit = 50,
    offset: Offset = 0,
    debtor_id: IdFilter = None,
    conversation_id: IdFilter = None,
    status: Annotated[HandoffStatus | None, Query()] = None,
    reason: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z_]+$")] = None,
) -> Page[HandoffOut]:
    stmt = (
        select(Handoff, Conversation.debtor_id)
        .join(Conversation, Handoff.conversation_id == Conversation.id)
        .order_by(Handoff.id)
    )
    if debtor_id is not None:
        stmt = stmt.where(Conversation.debtor_id == debtor_id)
    if conversation_id is not None:
        stmt = stmt.where(Handoff.conversation_id == conversation_id)
    if status:
        stmt = stmt.where(Handoff.status == status)
    if reason:
        stmt = stmt.where(Handoff.reason == reason)
    return paginate(db, stmt, limit, offset, lambda row: views.handoff(*row), scalars=False)


@router.get(
    "/late-payment-reasons",
    response_model=Page[LatePaymentReasonOut],
    tags=["late payment reasons"],
)
def list_late_payment_reasons(
    db: DbSession,
    _caller: Caller,
    limit: Limit = 50,
    offset: Offset = 0,
    debtor_id: IdFilter = None,
    category: Annotated[Category | None, Query()] = None,
) -> Page[LatePaymentReasonOut]:
    """Every reason debtors gave for paying late (a debtor's history: filter on `debtor_id`)."""
    stmt = select(LatePaymentReason).order_by(LatePaymentReason.id)
    if debtor_id is not None:
        stmt = stmt.where(LatePaymentReason.debtor_id == debtor_id)
    if category:
        stmt = stmt.where(LatePaymentReason.category == category)
    return paginate(db, stmt, limit, offset, LatePaymentReasonOut.model_validate)
