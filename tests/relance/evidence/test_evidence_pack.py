"""The evidence pack holds every invoice, message/call (timestamps, delivery status), promise,
dispute and letter of the debtor, with a manifest of SHA-256 digests."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path

from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.conversations.repository import conversation_for_debtor
from relance.db.base import utcnow
from relance.db.models import AuditEvent, Dispute, Promise
from relance.evidence.service import build_pack
from relance.letters.service import create_formal_notice
from tests.factories import make_debtor, make_invoice, make_message


@freeze_time("2026-11-23 10:00:00")
def test_pack_contains_the_whole_file(db: Session, tmp_path: Path) -> None:
    debtor = make_debtor(
        db, segment="b2b", company="Atelier Martin SARL", channels=("sms", "whatsapp")
    )
    other = make_debtor(db, channels=("sms", "whatsapp"))
    invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=40), number="F-9")
    make_invoice(db, other, due=utcnow().date(), number="NOT-MINE")
    make_message(
        db,
        conversation_for_debtor(db, debtor),
        channel="sms",
        direction="outbound",
        created_at=utcnow() - timedelta(days=5),
        status="delivered",
    )
    make_message(
        db,
        conversation_for_debtor(db, debtor),
        channel="voice",
        direction="inbound",
        created_at=utcnow() - timedelta(days=2),
        status="delivered",
    )
    db.add(
        Promise(
            debtor_id=debtor.id,
            amount_minor=500,
            currency="EUR",
            promised_date=utcnow().date(),
            status="broken",
        )
    )
    db.add(
        Dispute(
            reference="DSP-9",
            debtor_id=debtor.id,
            invoice_id=invoice.id,
            reason="quality",
            status="rejected",
        )
    )
    letter = create_formal_notice(
        db, debtor, [invoice.id], payment_url="https://p.test/x", out_dir=tmp_path
    )
    db.flush()

    pack = build_pack(db, debtor, actor="user:admin@example.com")
    archive = zipfile.ZipFile(io.BytesIO(pack))
    names = set(archive.namelist())
    assert {
        "manifest.json",
        "invoices.csv",
        "messages_and_calls.csv",
        "promises.csv",
        "disputes.csv",
        "letters.csv",
        "audit_trail.csv",
        "debtor.json",
        f"letters/MED-{letter.id:06d}.pdf",
    } <= names
    invoices = list(csv.DictReader(io.StringIO(archive.read("invoices.csv").decode())))
    assert [i["number"] for i in invoices] == ["F-9"]
    messages = list(csv.DictReader(io.StringIO(archive.read("messages_and_calls.csv").decode())))
    assert [(m["channel"], m["direction"], m["status"]) for m in messages] == [
        ("sms", "outbound", "delivered"),
        ("voice", "inbound", "delivered"),
    ]
    assert messages[0]["created_at"].startswith("2026-11-18T10:00")
    assert "DSP-9" in archive.read("disputes.csv").decode()
    assert "broken" in archive.read("promises.csv").decode()
    assert archive.read(f"letters/MED-{letter.id:06d}.pdf").startswith(b"%PDF")
    manifest = json.loads(archive.read("manifest.json"))
    for name, digest in manifest["files"].items():
        assert hashlib.sha256(archive.read(name)).hexdigest() == digest
    assert manifest["debtor"]["name"] == "Atelier Martin SARL"
    assert manifest["counts"] == {"invoices": 1, "messages": 2, "letters": 1, "emails_sent": 0}
    event = db.query(AuditEvent).filter_by(action="evidence.pack_built").one()
    assert event.details["sha256"] == hashlib.sha256(pack).hexdigest()


def test_pack_audit_counts_every_file_in_the_zip(db: Session) -> None:
    owner = make_debtor(db, channels=("sms", "whatsapp"))
    pack = build_pack(db, owner, actor="test")
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "evidence.pack_built")).one()
    assert event.details["files"] == len(zipfile.ZipFile(io.BytesIO(pack)).namelist())
