"""Build the evidence pack (ZIP) for one debtor, ready for an agency or an injonction de payer.

Contents: invoices, payments, every message and call with its timestamp and delivery status,
promises, disputes, payment plans, letters (with their PDFs and tracking numbers), dunning
actions and the audit trail, plus a manifest with a SHA-256 per file so the pack can be shown
not to have been altered after it was produced.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance import audit
from relance.archive import zip_with_manifest
from relance.csv_export import csv_bytes
from relance.db.base import utcnow
from relance.db.models import (
    AuditEvent,
    Conversation,
    Debtor,
    Dispute,
    DunningAction,
    Invoice,
    Letter,
    Message,
    Payment,
    PaymentPlan,
    Promise,
)

INVOICE_COLUMNS = (
    "number",
    "issue_date",
    "due_date",
    "amount_minor",
    "paid_minor",
    "currency",
    "status",
    "description",
)
MESSAGE_COLUMNS = (
    "created_at",
    "direction",
    "channel",
    "author",
    "address",
    "status",
    "error_code",
    "provider_id",
    "body",
)


def _value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def _csv(rows: Iterable[Any], columns: Sequence[str]) -> bytes:
    return csv_bytes(columns, ([_value(getattr(row, c)) for c in columns] for row in rows))


def _columns(model: Any) -> tuple[str, ...]:
    return tuple(c.key for c in model.__table__.columns)


def build_pack(session: Session, debtor: Debtor, *, actor: str = "system") -> bytes:
    """The ZIP as bytes; an audit event records who produced it and its digest."""

    def rows(model: Any, *where: Any, order: Any) -> list[Any]:
        return list(session.scalars(select(model).where(*where).order_by(order)))

    invoices = rows(Invoice, Invoice.debtor_id == debtor.id, order=Invoice.due_date)
    conversation_ids = select(Conversation.id).where(Conversation.debtor_id == debtor.id)
    messages = rows(Message, Message.conversation_id.in_(conversation_ids), order=Message.id)
    letters = rows(Letter, Letter.debtor_id == debtor.id, order=Letter.id)
    files: dict[str, bytes] = {
        "debtor.json": json.dumps(
            {c: _value(getattr(debtor, c)) for c in _columns(Debtor)}
            | {
                "contacts": [
                    {
                        c: _value(getattr(x, c))
                        for c in ("channel", "address", "consent", "opted_out_at", "status")
                    }
                    for x in debtor.contacts
                ]
            },
            ensure_ascii=False,
            indent=2,
        ).encode("utf-8"),
        "invoices.csv": _csv(invoices, INVOICE_COLUMNS),
        "payments.csv": _csv(
            rows(Payment, Payment.debtor_id == debtor.id, order=Payment.received_at),
            _columns(Payment),
        ),
        "messages_and_calls.csv": _csv(messages, MESSAGE_COLUMNS),
        "promises.csv": _csv(
            rows(Promise, Promise.debtor_id == debtor.id, order=Promise.id), _columns(Promise)
        ),
        "disputes.csv": _csv(
            rows(Dispute, Dispute.debtor_id == debtor.id, order=Dispute.id), _columns(Dispute)
        ),
        "payment_plans.csv": _csv(
            rows(PaymentPlan, PaymentPlan.debtor_id == debtor.id, order=PaymentPlan.id),
            _columns(PaymentPlan),
        ),
        "letters.csv": _csv(letters, _columns(Letter)),
        "dunning_actions.csv": _csv(
            rows(DunningAction, DunningAction.debtor_id == debtor.id, order=DunningAction.id),
            _columns(DunningAction),
        ),
        "audit_trail.csv": _csv(
            rows(AuditEvent, AuditEvent.debtor_id == debtor.id, order=AuditEvent.id),
            _columns(AuditEvent),
        ),
    }
    for letter in letters:
        if letter.pdf_path and Path(letter.pdf_path).is_file():
            files[f"letters/{Path(letter.pdf_path).name}"] = Path(letter.pdf_path).read_bytes()
    generated_at = utcnow()
    manifest = {
        "debtor": {
            "id": debtor.id,
            "customer_number": debtor.customer_number,
            "name": debtor.display_name,
        },
        "generated_at": generated_at.isoformat(),
        "generated_by": actor,
        "open_balance_minor": sum(i.balance_minor for i in invoices if i.status != "paid"),
        "counts": {"invoices": len(invoices), "messages": len(messages), "letters": len(letters)},
    }
    pack = zip_with_manifest(files, manifest)
    audit.record(
        session,
        actor=actor,
        action="evidence.pack_built",
        debtor_id=debtor.id,
        sha256=hashlib.sha256(pack).hexdigest(),
        files=len(files) + 1,
    )  # + manifest.json
    return pack
