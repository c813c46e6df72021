"""A debtor whose personal data sits in every place it can: the fixture of the privacy tests."""

from __future__ import annotations

import hashlib
import itertools
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, String, Text, select
from sqlalchemy.orm import Session

from relance import audit
from relance.conversations.repository import conversation_for_debtor
from relance.db.base import Base
from relance.db.models import (
    Debtor,
    Dispute,
    DunningAction,
    Handoff,
    Invoice,
    LatePaymentReason,
    Letter,
    Message,
    PaymentLink,
    PaymentPlan,
    Promise,
    SavedPaymentMethod,
    Task,
    WebhookEvent,
)
from tests.factories import make_debtor, make_invoice, make_payment

_seq = itertools.count(1)
TRACKER_SCHEMA = (  # Rasa 3.6 SQLTrackerStore.SQLEvent, as created by Rasa itself
    "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255) NOT NULL, "
    "type_name VARCHAR(255) NOT NULL, timestamp FLOAT, intent_name VARCHAR(255), "
    "action_name VARCHAR(255), data TEXT)"
)


@dataclass
class Seeded:
    debtor: Debtor
    name: str
    phone: str
    email: str
    text: str
    company: str
    street: str
    invoice: Invoice
    link: PaymentLink
    pdf: Path

    @property
    def needles(self) -> list[str]:
        return [self.name, self.phone, self.email, self.text, self.company, self.street]


def seed_debtor(
    db: Session,
    tmp_path: Path,
    *,
    settled: bool = True,
    old: bool = False,
    surname: str = "Lambertini",
) -> Seeded:
    """`settled`: the invoice is paid; `old`: everything happened about three years ago."""
    n = next(_seq)
    now = datetime.now(UTC) - (timedelta(days=1100) if old else timedelta(days=1))
    name = f"Zoé {surname} {n}"
    phone = f"+3369988{n:04d}"
    email = f"zoe.{surname.lower()}{n}@example.org"
    company = f"{surname} Café {n}"
    street = f"{n} rue des Capucines"
    text = f"Je ne peux pas payer avant vendredi, rappelez-moi au {phone} ({n})"
    debtor = make_debtor(
        db,
        channels=("sms", "whatsapp"),
        phone=phone,
        customer_number=f"PRIV-{n:05d}",
        name=name,
        company=company,
        email=email,
        address_line=street,
        postcode="75002",
        city="Paris",
    )
    invoice = make_invoice(
        db,
        debtor,
        12_345,
        number=f"FAC-PRIV-{n}",
        paid_minor=12_345 if settled else 0,
        issued=now.date() - timedelta(days=60),
        due=now.date() - timedelta(days=30),
        status="paid" if settled else "open",
        paid_at=now if settled else None,
    )
    if settled:
        make_payment(
            db, debtor, 12_345, provider="stripe", provider_ref=f"pi_priv_{n}", received_at=now
        )
    conversation = conversation_for_debtor(db, debtor)
    conversation.last_message_at = now
    conversation.created_at = now - timedelta(days=2)
    provider_id = f"SMpriv{n:026d}"
    db.add_all(
        [
            Message(
                conversation_id=conversation.id,
                direction="inbound",
                channel="sms",
                author="debtor",
                body=text,
                address=phone,
                provider_id=provider_id,
                status="received",
                created_at=now,
            ),
            Message(
                conversation_id=conversation.id,
                direction="outbound",
                channel="sms",
                author="bot",
                body=f"Merci {name}, c'est noté.",
                address=phone,
                status="delivered",
                created_at=now,
                extra={"withheld_texts": [text], "segment": 1},
            ),
            Message(
                conversation_id=conversation.id,
                direction="inbound",
                channel="voice",
                author="debtor",
                body=f"sept cinq zéro zéro deux, dossier {n}",
                address=phone,
                status="received",
                created_at=now,
                extra={"input": "dtmf", "digits": "75002", "call_status": "completed"},
            ),
        ]
    )
    db.add(
        LatePaymentReason(
            debtor_id=debtor.id,
            conversation_id=conversation.id,
            category="hardship",
            words=text,
            channel="sms",
            created_at=now,
        )
    )
    db.add(
        Handoff(
            conversation_id=conversation.id,
            reason="requested",
            details=f"{name} wants a call on {phone}",
            status="open",
        )
    )
    db.add(
        Dispute(
            reference=f"DSP-PRIV-{n}",
            debtor_id=debtor.id,
            invoice_id=invoice.id,
            reason="quality",
            details=f"{name}: {text}",
            status="resolved" if settled else "open",
            resolution_note=f"Called {phone}",
            resolved_at=now if settled else None,
        )
    )
    db.add(
        PaymentPlan(
            debtor_id=debtor.id,
            total_minor=12_345,
            currency="EUR",
            installments_count=3,
            frequency="monthly",
            status="completed",
            note=f"Agreed with {name}",
        )
    )
    db.add(
        Promise(
            debtor_id=debtor.id,
            amount_minor=12_345,
            currency="EUR",
            promised_date=now.date(),
            status="kept",
        )
    )
    db.add(
        Task(
            kind="callback",
            debtor_id=debtor.id,
            status="open",
            details={"phone": phone, "note": f"{name} asked for a call back"},
        )
    )
    db.add(
        DunningAction(
            idempotency_key=f"{invoice.id}:friendly",
            invoice_id=invoice.id,
            debtor_id=debtor.id,
            stage="friendly",
            kind="message",
            group_key=f"g-{n}",
            status="sent",
            channels=["sms"],
            detail=f"sent to {phone}",
        )
    )
    link = PaymentLink(
        token_hash=hashlib.sha256(f"tok-{n}".encode()).hexdigest(),
        debtor_id=debtor.id,
        purpose="balance",
        amount_minor=12_345,
        currency="EUR",
        expires_at=datetime.now(UTC) + timedelta(days=5),
    )
    db.add(link)
    db.add(
        SavedPaymentMethod(
            debtor_id=debtor.id,
            provider="stripe",
            customer_ref=f"cus_{n}",
            payment_method_ref=f"pm_{n}",
        )
    )
    pdf = tmp_path / f"MED-PRIV-{n}.pdf"
    pdf.write_bytes(b"%PDF-1.4 " + name.encode() + b" " + street.encode())
    db.add(
        Letter(
            debtor_id=debtor.id,
            language="fr",
            status="queued",
            invoice_ids=[invoice.id],
            principal_minor=12_345,
            currency="EUR",
            deadline=date.today(),
            pdf_path=str(pdf),
        )
    )
    db.add(
        WebhookEvent(
            provider="twilio",
            event_id=provider_id,
            kind="sms",
            payload={"From": phone, "Body": text, "MessageSid": provider_id},
            response_body=f"<Response><Message>Merci {name}</Message></Response>",
        )
    )
    db.add(
        WebhookEvent(
            provider="twilio",
            event_id=f"status-{n}",
            kind="status",
            payload={"To": phone, "MessageStatus": "delivered"},
        )
    )
    audit.record(
        db,
        actor="debtor",
        action="contact.opted_out",
        debtor_id=debtor.id,
        channel="sms",
        address=phone,
        source="sms",
        keyword="STOP",
    )
    audit.record(
        db,
        actor="user:collector@example.test",
        action="conversation.reply",
        debtor_id=debtor.id,
        text=f"Bonjour {name}",
        length=12,
    )
    audit.record(db, actor="system", action="conversation.unknown_number", **{"from": phone})
    db.flush()
    db.refresh(debtor)
    return Seeded(debtor, name, phone, email, text, company, street, invoice, link, pdf)


def seed_tracker(var_dir: Path, *senders: str) -> Path:
    """Rasa's SQLite tracker store with one user message per conversation."""
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / "rasa_tracker.db"
    with sqlite3.connect(path) as conn:
        conn.execute(TRACKER_SCHEMA)
        for sender in senders:
            conn.execute(
                "INSERT INTO events (sender_id, type_name, timestamp, intent_name, data) "
                "VALUES (?, 'user', 1.0, 'inform', ?)",
                (sender, json.dumps({"event": "user", "text": f"texte de {sender}"})),
            )
    return path


def tracker_senders(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return sorted(r[0] for r in conn.execute("SELECT sender_id FROM events"))


def occurrences(db: Session, needles: list[str]) -> dict[str, list[Any]]:
    """`table.column` -> values containing a needle, over every text and JSON column."""
    found: dict[str, list[Any]] = {}
    for table in Base.metadata.tables.values():
        for column in table.c:
            if not isinstance(column.type, String | Text | JSON):
                continue
            for value in db.scalars(select(column)):
                if value is None:
                    continue
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                hits = [n for n in needles if n.lower() in text.lower()]
                if hits:
                    found.setdefault(f"{table.name}.{column.key}", []).append(text[:120])
    return found
