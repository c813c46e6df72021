"""Handoff creation, priorities and signal detection."""

from __future__ import annotations

from sqlalchemy.orm import Session

from relance.handoff.service import create_handoff, detect_signal
from tests.factories import make_conversation, make_debtor


def test_signals_fr_en() -> None:
    assert detect_signal("je suis en dépression depuis mon licenciement") == "vulnerability"
    assert detect_signal("My husband passed away last month") == "vulnerability"
    assert detect_signal("mon avocat vous contactera") == "legal"
    assert detect_signal("we filed for bankruptcy") == "legal"
    assert detect_signal("je paierai vendredi") is None
    assert detect_signal("pas de soucis, je suis courtois") is None


def test_one_open_handoff_priority_raised(db: Session) -> None:
    debtor = make_debtor(db)
    conv = make_conversation(db, debtor)
    first = create_handoff(db, conv, reason="requested")
    again = create_handoff(db, conv, reason="vulnerability", details="deuil")
    assert again.id == first.id and again.priority == 3 and again.reason == "vulnerability"
    assert conv.mode == "human"
