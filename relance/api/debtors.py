"""`GET /debtors` (search, filter) and `GET /debtors/{id}` (the 360° view).

A debtor's status is derived, never stored, so it cannot drift from the cases behind it. The
same SQL expression is shown in the response and used by the filter, so they always agree.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query
from sqlalchemy import ColumnElement, case, exists, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload

from relance.api import views
from relance.api.auth import Caller
from relance.api.pagination import Limit, Offset, SearchText, like_pattern, paginate
from relance.api.schemas import (
    MAX_ID,
    ContactOut,
    ConversationOut,
    Debtor360,
    DebtorStatus,
    DebtorSummary,
    DisputeOut,
    ErrorOut,
    LatePaymentReasonOut,
    Money,
    Page,
    money,
)
from relance.db.models import (
    Contact,
    Conversation,
    Debtor,
    Dispute,
    Invoice,
    Letter,
    PaymentPlan,
    Promise,
)
from relance.db.models.enums import (
    DisputeStatus,
    InvoiceStatus,
    PlanStatus,
    PromiseStatus,
    Segment,
)
from relance.errors import NotFound
from relance.late_reasons.service import history as late_reason_history
from relance.web.deps import DbSession

router = APIRouter(tags=["debtors"])

OUTSTANDING = (InvoiceStatus.OPEN, InvoiceStatus.DISPUTED)
# The debtor's records listed in the 360° view (each has `debtor_id`).
Record = TypeVar("Record", Invoice, Promise, Dispute, Letter)


def status_expression() -> ColumnElement[DebtorStatus]:
    """disputed > in_plan > promised > owing > settled: the first that applies wins."""
    open_dispute = exists().where(
        Dispute.debtor_id == Debtor.id, Dispute.status == DisputeStatus.OPEN
    )
    live_plan = exists().where(
        PaymentPlan.debtor_id == Debtor.id,
        PaymentPlan.status.in_([PlanStatus.ACTIVE, PlanStatus.PENDING_APPROVAL]),
    )
    pending_promise = exists().where(
        Promise.debtor_id == Debtor.id, Promise.status == PromiseStatus.PENDING
    )
    owing = exists().where(
        Invoice.debtor_id == Debtor.id,
        Invoice.status.in_(OUTSTANDING),
        Invoice.amount_minor > Invoice.paid_minor,
    )
    return case(
        (open_dispute, "disputed"),
        (live_plan, "in_plan"),
        (pending_promise, "promised"),
        (owing, "owing"),
        else_="settled",
    )


def balances(db: Session, debtor_ids: list[int]) -> dict[int, list[Money]]:
    """Outstanding balance per debtor and currency (open and disputed invoices)."""
    found: dict[int, list[Money]] = defaultdict(list)
    if not debtor_ids:
        return found
    rows = db.execute(
        select(
            Invoice.debtor_id,
            Invoice.currency,
            func.sum(Invoice.amount_minor - Invoice.paid_minor),
        )
        .where(
            Invoice.debtor_id.in_(debtor_ids),
            Invoice.status.in_(OUTSTANDING),
            Invoice.amount_minor > Invoice.paid_minor,
        )
        .group_by(Invoice.debtor_id, Invoice.currency)
        .order_by(Invoice.debtor_id, Invoice.currency)
    )
    for debtor_id, currency, amount in rows:
        found[debtor_id].append(money(int(amount), currency))
    return found


def _summary(debtor: Debtor, status: DebtorStatus, owed: list[Money]) -> DebtorSummary:
    """The list row; the 360° view starts from the same fields."""
    return DebtorSummary(
        id=debtor.id,
        customer_number=debtor.customer_number,
        name=debtor.name,
        company=debtor.company,
        segment=debtor.segment,
        language=debtor.language,
        timezone=debtor.timezone,
        country=debtor.country,
        status=status,
        balances=owed,
        created_at=debtor.created_at,
    )


@router.get("/debtors", response_model=Page[DebtorSummary])
def list_debtors(
    db: DbSession,
    _caller: Caller,
    limit: Limit = 50,
    offset: Offset = 0,
    q: SearchText = None,
    segment: Annotated[Segment | None, Query()] = None,
    status: Annotated[DebtorStatus | None, Query()] = None,
) -> Page[DebtorSummary]:
    """Debtors by id; `q` matches name, company, customer number, email or an exact phone."""
    status_col = status_expression().label("status")
    stmt = select(Debtor, status_col).order_by(Debtor.id)
    if q:
        pattern = like_pattern(q)
        phone_match = exists().where(
            Contact.debtor_id == Debtor.id,
            Contact.address.in_([q, f"whatsapp:{q}"]),
        )
        stmt = stmt.where(
            or_(
                Debtor.name.ilike(pattern, escape="\\"),
                Debtor.company.ilike(pattern, escape="\\"),
                Debtor.customer_number.ilike(pattern, escape="\\"),
                Debtor.email.ilike(pattern, escape="\\"),
                phone_match,
            )
        )
    if segment:
        stmt = stmt.where(Debtor.segment == segment)
    if status:
        stmt = stmt.where(status_expression() == status)
    rows = paginate(db, stmt, limit, offset, lambda row: row, scalars=False)
    owed = balances(db, [debtor.id for debtor, _ in rows.items])
    summaries = [
        _summary(debtor, row_status, owed.get(debtor.id, [])) for debtor, row_status in rows.items
    ]
    return Page[DebtorSummary](
        items=summaries,
        total=rows.total,
        limit=rows.limit,
        offset=rows.offset,
        next_offset=rows.next_offset,
    )


@router.get(
    "/debtors/{debtor_id}",
    response_model=Debtor360,
    responses={404: {"model": ErrorOut}},
)
def get_debtor(
    db: DbSession, _caller: Caller, debtor_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> Debtor360:
    """The 360° view: contacts (consent, opt-out), invoices, balance and every open case."""
    row = db.execute(
        select(Debtor, status_expression())
        .where(Debtor.id == debtor_id)
        .options(selectinload(Debtor.contacts))
    ).first()
    if row is None:
        raise NotFound("debtor_not_found", f"No debtor with id {debtor_id}")
    debtor, status = row

    def of(model: type[Record], *order: InstrumentedAttribute[Any]) -> list[Record]:
        stmt = select(model).where(model.debtor_id == debtor_id).order_by(*order, model.id)
        return list(db.scalars(stmt))

    plans = db.scalars(
        select(PaymentPlan)
        .where(PaymentPlan.debtor_id == debtor_id)
        .options(selectinload(PaymentPlan.installments))
        .order_by(PaymentPlan.id)
    ).all()
    conversation = db.scalars(
        select(Conversation).where(Conversation.debtor_id == debtor_id)
    ).first()
    reasons = [LatePaymentReasonOut.model_validate(r) for r in late_reason_history(db, debtor_id)]
    return Debtor360(
        **dict(_summary(debtor, status, balances(db, [debtor_id]).get(debtor_id, []))),
        risk_class=debtor.risk_class,
        jurisdiction=debtor.jurisdiction,
        email=debtor.email,
        address_line=debtor.address_line,
        postcode=debtor.postcode,
        city=debtor.city,
        contacts=[ContactOut.model_validate(c) for c in debtor.contacts],
        invoices=[views.invoice(i) for i in of(Invoice, Invoice.due_date)],
        promises=[views.promise(p) for p in of(Promise, Promise.promised_date)],
        disputes=[DisputeOut.model_validate(d) for d in of(Dispute)],
        payment_plans=[views.plan(p) for p in plans],
        letters=[views.letter(x) for x in of(Letter)],
        conversation=ConversationOut.model_validate(conversation) if conversation else None,
        late_payment_reason=reasons[0] if reasons else None,
        late_payment_reasons=reasons,
    )
