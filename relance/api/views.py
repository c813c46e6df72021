"""Model → response conversions that compute something (money with its currency, totals, derived
flags), in one place so every endpoint shows a row the same way. Responses that copy a row's
columns as they are declare `from_attributes` in schemas.py and are built with `model_validate`."""

from __future__ import annotations

from relance.api import schemas as s
from relance.db.models import (
    Handoff,
    Installment,
    Invoice,
    Letter,
    PaymentPlan,
    Promise,
    VersionedDocument,
)


def invoice(row: Invoice) -> s.InvoiceOut:
    return s.InvoiceOut(
        id=row.id,
        debtor_id=row.debtor_id,
        number=row.number,
        description=row.description,
        amount=s.money(row.amount_minor, row.currency),
        paid=s.money(row.paid_minor, row.currency),
        balance=s.money(row.balance_minor, row.currency),
        issue_date=row.issue_date,
        due_date=row.due_date,
        status=row.status,
        dunning_paused_until=row.dunning_paused_until,
        paid_at=row.paid_at,
        created_at=row.created_at,
    )


def installment(row: Installment, currency: str) -> s.InstallmentOut:
    return s.InstallmentOut(
        id=row.id,
        seq=row.seq,
        due_date=row.due_date,
        amount=s.money(row.amount_minor, currency),
        paid=s.money(row.paid_minor, currency),
        status=row.status,
    )


def plan(row: PaymentPlan) -> s.PaymentPlanOut:
    return s.PaymentPlanOut(
        id=row.id,
        debtor_id=row.debtor_id,
        total=s.money(row.total_minor, row.currency),
        installments_count=row.installments_count,
        frequency=row.frequency,
        status=row.status,
        invoice_ids=list(row.invoice_ids or []),
        approved_by=row.approved_by,
        note=row.note,
        installments=[installment(i, row.currency) for i in row.installments],
        created_at=row.created_at,
    )


def promise(row: Promise) -> s.PromiseOut:
    return s.PromiseOut(
        id=row.id,
        debtor_id=row.debtor_id,
        amount=s.money(row.amount_minor, row.currency),
        promised_date=row.promised_date,
        status=row.status,
        invoice_ids=list(row.invoice_ids or []),
        source=row.source,
        created_at=row.created_at,
    )


def letter(row: Letter) -> s.LetterOut:
    total = row.principal_minor + row.interest_minor + row.indemnity_minor
    return s.LetterOut(
        id=row.id,
        debtor_id=row.debtor_id,
        kind=row.kind,
        language=row.language,
        status=row.status,
        invoice_ids=list(row.invoice_ids or []),
        principal=s.money(row.principal_minor, row.currency),
        interest=s.money(row.interest_minor, row.currency),
        indemnity=s.money(row.indemnity_minor, row.currency),
        total=s.money(total, row.currency),
        deadline=row.deadline,
        has_pdf=bool(row.pdf_path),
        tracking_number=row.tracking_number,
        sent_at=row.sent_at,
        created_at=row.created_at,
    )


def handoff(row: Handoff, debtor_id: int | None) -> s.HandoffOut:
    return s.HandoffOut(
        id=row.id,
        conversation_id=row.conversation_id,
        debtor_id=debtor_id,
        reason=row.reason,
        details=row.details,
        priority=row.priority,
        status=row.status,
        assigned_to_id=row.assigned_to_id,
        closed_at=row.closed_at,
        created_at=row.created_at,
    )


def policy(row: VersionedDocument) -> s.PolicyOut:
    return s.PolicyOut(
        id=row.id,
        version=row.version,
        source="stored",
        document=dict(row.document or {}),
        comment=row.comment,
        created_by=row.created_by,
        created_at=row.created_at,
    )
