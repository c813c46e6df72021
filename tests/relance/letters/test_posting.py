"""Marking a letter posted: tracking number normalised, who and when stored, audited, and only
queued → posted (a posted letter keeps its first tracking number)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy.orm import Session

from relance.db.base import utcnow
from relance.db.models import AuditEvent
from relance.errors import Conflict, InvalidContent
from relance.letters.service import (
    create_formal_notice,
    mark_posted,
    normalise_tracking,
)
from tests.factories import make_debtor, make_invoice

URL = "https://pay.example.test/pay/tok"


def test_tracking_numbers_are_normalised_and_checked() -> None:
    assert normalise_tracking(" 1a 1234-5678 901 ") == "1A12345678901"
    for bad in ("", "123", "1A1234567890123456789", "1A12345<b>"):
        with pytest.raises(InvalidContent, match="8 to 20") as refused:
            normalise_tracking(bad)
        assert refused.value.code == "invalid_tracking_number"


@freeze_time("2026-11-23 09:00:00")
def test_posted_once_with_who_and_when(db: Session, tmp_path: Path) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=40))
    letter = create_formal_notice(db, debtor, [invoice.id], payment_url=URL, out_dir=tmp_path)
    mark_posted(db, letter, "1a 1234 5678 901", actor="user:collector@example.test")
    assert (letter.status, letter.tracking_number, letter.posted_by) == (
        "sent",
        "1A12345678901",
        "user:collector@example.test",
    )
    assert letter.sent_at == utcnow()
    with pytest.raises(Conflict, match="is sent, not queued") as again:
        mark_posted(db, letter, "2C99999999999", actor="user:other@example.test")
    assert again.value.code == "letter_not_queued"
    assert letter.tracking_number == "1A12345678901"
    events = db.query(AuditEvent).filter_by(debtor_id=debtor.id, action="letter.posted").all()
    assert len(events) == 1 and events[0].actor == "user:collector@example.test"


def test_a_cancelled_letter_cannot_be_posted(db: Session, tmp_path: Path) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=40))
    letter = create_formal_notice(db, debtor, [invoice.id], payment_url=URL, out_dir=tmp_path)
    letter.status = "cancelled"
    db.flush()
    with pytest.raises(Conflict) as cancelled:
        mark_posted(db, letter, "1A12345678901", actor="user:a@example.test")
    assert cancelled.value.code == "letter_not_queued"
    assert letter.tracking_number is None
