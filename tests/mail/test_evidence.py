"""Every e-mail sent is evidence: the pack carries the exact bytes that left (`.eml`) with the
Message-ID, SMTP response and SHA-256 recorded at sending, and never passes off altered bytes."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile

from sqlalchemy.orm import Session

from mail.gateway import SmtpMailGateway
from relance.evidence.service import build_pack
from relance.private_files import sent_mail_dir
from relance.settings import get_settings
from tests.factories import make_debtor
from tests.mail.conftest import DEBTOR_EMAIL
from tests.mail.sink import Sink
from tests.mail.test_outbound import _invoice, _reminder, _send


def _pack(db: Session, debtor) -> tuple[zipfile.ZipFile, dict]:  # type: ignore[no-untyped-def]
    archive = zipfile.ZipFile(io.BytesIO(build_pack(db, debtor, actor="user:admin@example.com")))
    return archive, json.loads(archive.read("manifest.json"))


def test_the_pack_holds_each_sent_email_as_sent(
    db: Session, sink: Sink, mail_gateway: SmtpMailGateway
) -> None:
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    invoice = _invoice(db, debtor)
    first = _send(db, mail_gateway, debtor.id, _reminder(invoice, key="dunning:g1:friendly"))
    second = _send(db, mail_gateway, debtor.id, _reminder(invoice, key="dunning:g1:firm"))

    archive, manifest = _pack(db, debtor)

    rows = list(csv.DictReader(io.StringIO(archive.read("emails_sent.csv").decode())))
    assert [r["message_id"] for r in rows] == [first.provider_id, second.provider_id]
    assert manifest["counts"]["emails_sent"] == 2 and manifest["emails_unverified"] == []
    received = [m.data for m in sink.received]
    for row in rows:
        kept = archive.read(f"emails/{row['eml']}")
        assert kept in received  # the bytes the SMTP server got, not a re-rendering
        assert hashlib.sha256(kept).hexdigest() == row["sha256"]
        assert row["smtp_response"].startswith("2.0.0 Ok: queued as")
        assert manifest["files"][f"emails/{row['eml']}"] == row["sha256"]


def test_an_altered_or_missing_eml_is_listed_not_packed(
    db: Session, sink: Sink, mail_gateway: SmtpMailGateway
) -> None:
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    invoice = _invoice(db, debtor)
    altered = _send(db, mail_gateway, debtor.id, _reminder(invoice, key="dunning:g2:friendly"))
    missing = _send(db, mail_gateway, debtor.id, _reminder(invoice, key="dunning:g2:firm"))
    folder = sent_mail_dir(get_settings().var_dir)
    path = folder / altered.extra["eml"]
    path.write_bytes(path.read_bytes().replace(b"Subject:", b"Subject: PAID -"))
    (folder / missing.extra["eml"]).unlink()

    archive, manifest = _pack(db, debtor)

    assert manifest["emails_unverified"] == sorted([altered.extra["eml"], missing.extra["eml"]])
    assert not [n for n in archive.namelist() if n.startswith("emails/")]
    assert manifest["counts"]["emails_sent"] == 2  # still listed in emails_sent.csv
