"""The export holds everything about the debtor and nothing about anyone else, and is audited."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import AuditEvent
from relance.errors import NotFound
from relance.privacy.export import build_export
from relance.privacy.repository import find_debtor
from tests.relance.privacy.helpers import seed_debtor


def test_export_contains_everything_held_about_the_debtor(db: Session, tmp_path: Path) -> None:
    seeded = seed_debtor(db, tmp_path)
    other = seed_debtor(db, tmp_path, surname="Okonkwo")

    pack = build_export(db, seeded.debtor, actor="user:admin@example.test")
    archive = zipfile.ZipFile(io.BytesIO(pack))
    document = json.loads(archive.read("export.json"))
    tables = document["tables"]

    assert document["format"] == "relance-debtor-export/1"
    assert document["customer_number"] == seeded.debtor.customer_number
    debtor = tables["debtors"][0]
    assert (debtor["name"], debtor["email"], debtor["address_line"]) == (
        seeded.name,
        seeded.email,
        seeded.street,
    )
    assert {(c["channel"], c["address"], c["consent"]) for c in tables["contacts"]} == {
        ("sms", seeded.phone, True),
        ("whatsapp", f"whatsapp:{seeded.phone}", True),
    }
    assert [i["number"] for i in tables["invoices"]] == [seeded.invoice.number]
    assert tables["invoices"][0]["amount_minor"] == 12_345
    assert [p["amount_minor"] for p in tables["payments"]] == [12_345]
    assert seeded.text in [m["body"] for m in tables["messages"]]
    assert any(m["channel"] == "voice" for m in tables["messages"])  # call transcripts
    assert [p["status"] for p in tables["promises"]] == ["kept"]
    assert tables["disputes"][0]["reference"].startswith("DSP-PRIV-")
    assert [p["note"] for p in tables["payment_plans"]] == [f"Agreed with {seeded.name}"]
    assert len(tables["letters"]) == 1 and len(tables["handoffs"]) == 1
    assert {e["action"] for e in tables["audit_events"]} >= {
        "contact.opted_out",
        "conversation.reply",
    }
    assert "token_hash" not in tables["payment_links"][0]
    # nothing about the other debtor
    assert other.name not in archive.read("export.json").decode()
    # readable files beside the JSON
    names = set(archive.namelist())
    assert {
        "tables/invoices.csv",
        "tables/messages.csv",
        "conversation.txt",
        "manifest.json",
        f"letters/{seeded.pdf.name}",
    } <= names
    rows = list(csv.DictReader(io.StringIO(archive.read("tables/invoices.csv").decode())))
    assert rows[0]["number"] == seeded.invoice.number
    assert seeded.text in archive.read("conversation.txt").decode()
    manifest = json.loads(archive.read("manifest.json"))
    for name, digest in manifest["files"].items():
        assert hashlib.sha256(archive.read(name)).hexdigest() == digest
    # audited, with the digest and without the data
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "privacy.exported")).one()
    assert event.debtor_id == seeded.debtor.id and event.actor == "user:admin@example.test"
    assert event.details["sha256"] == hashlib.sha256(pack).hexdigest()
    assert seeded.name not in json.dumps(event.details, ensure_ascii=False)


def test_find_debtor_by_customer_number_or_id(db: Session, tmp_path: Path) -> None:
    seeded = seed_debtor(db, tmp_path)
    assert find_debtor(db, seeded.debtor.customer_number) is seeded.debtor
    assert find_debtor(db, str(seeded.debtor.id)) is seeded.debtor
    with pytest.raises(NotFound, match="NOPE-1") as unknown:
        find_debtor(db, "NOPE-1")
    assert unknown.value.code == "debtor_not_found"
