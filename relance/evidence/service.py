"""Build the evidence pack (ZIP) for one debtor, ready for an agency or an injonction de payer.

Contents: invoices, payments, every message and call with its timestamp and delivery status,
promises, disputes, payment plans, letters (with their PDFs and tracking numbers), every e-mail
sent as the exact bytes that left (`.eml`) with its Message-ID, SMTP response and SHA-256,
dunning actions and the audit trail, plus a manifest with a SHA-256 per file so the pack can be
shown not to have been altered after it was produced.
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
from relance.db.models.enums import Channel, Direction
from relance.private_files import sent_mail_dir
from relance.settings import get_settings

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

EMAIL_COLUMNS = (
    "created_at",
    "status",
    "address",
    "message_id",
    "smtp_code",
    "smtp_response",
    "sent_at",
    "sha256",
    "size",
    "eml",
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


def _sent_emails(messages: Sequence[Message]) -> tuple[list[list[Any]], set[str]]:
    """One row per e-mail sent, and the `.eml` names whose bytes cannot be vouched for."""
    folder = sent_mail_dir(get_settings().var_dir)
    rows: list[list[Any]] = []
    unverified: set[str] = set()
    for message in messages:
        extra = message.extra or {}
        if message.channel != Channel.EMAIL or message.direction != Direction.OUTBOUND:
            continue
        if "sha256" not in extra:  # stored reply rows carried by another row's e-mail
            continue
        name = str(extra.get("eml") or "")
        path = folder / name
        if (
            not name
            or not path.is_file()
            or (hashlib.sha256(path.read_bytes()).hexdigest() != extra["sha256"])
        ):
            unverified.add(name or f"message-{message.id}")
        rows.append(
            [
                _value(message.created_at),
                message.status,
                message.address,
                message.provider_id,
                extra.get("smtp_code"),
                extra.get("smtp_response"),
                extra.get("sent_at"),
                extra["sha256"],
                extra.get("size"),
                name,
            ]
        )
    return rows, unverified


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
    emails, unverified = _sent_emails(messages)
    files["emails_sent.csv"] = csv_bytes(EMAIL_COLUMNS, emails)
    kept = sent_mail_dir(get_settings().var_dir)
    for name in (row[-1] for row in emails):
        if name and name not in unverified:
            files[f"emails/{name}"] = (kept / name).read_bytes()
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
        "counts": {
            "invoices": len(invoices),
            "messages": len(messages),
            "letters": len(letters),
            "emails_sent": len(emails),
        },
        # Sent e-mails whose kept bytes are missing or no longer match the SHA-256 recorded
        # when they were sent: listed, never packed as if they were the original.
        "emails_unverified": sorted(unverified),
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
