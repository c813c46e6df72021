"""The identity check attacked through the signed SMS webhook, against the real processes
(issue 17.1), and a debtor asking questions during the check (issue 16.6)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from relance.db.models import AuditEvent
from tests.support.identity_attacks import postcode_list_sms
from twilio_edge.splitting import TWILIO_MAX_BODY

from .conftest import RunningStack
from .test_sms_conversation import _converse, _debtor_by_phone, _possible_balances, _session

pytestmark = pytest.mark.e2e


def test_an_sms_listing_240_postcodes_reveals_nothing(e2e_stack: RunningStack) -> None:
    """Every postcode the check reads is an attempt, so a list locks the check at once: nothing
    revealed, nothing verified. A model may read such a list as off-topic (the CI model retrained
    on 2026-12-06 does, at 0.94); the identity form reads a message shaped like postcodes as the
    answer whatever its intent, so the list is checked, and locks, either way."""
    phone = "+33639980016"  # demo debtor C-FR-016 (postcode 38000), used by no other e2e test
    # Comma-separated so the whole list fits the 1,600 characters of one (concatenated) SMS, the
    # most Twilio delivers and the webhook keeps: with ", " the tail (229 of 240) was cut off.
    attack = postcode_list_sms(",")
    assert "38000" in attack and len(attack) <= TWILIO_MAX_BODY
    answers = _converse(e2e_stack, phone, ["Bonjour", "Combien je dois ?", attack], prefix="pc")
    with _session(e2e_stack) as session:
        debtor = _debtor_by_phone(session, phone)
        balances = _possible_balances(session, debtor)
        events = list(
            session.scalars(
                select(AuditEvent).where(
                    AuditEvent.debtor_id == debtor.id, AuditEvent.action.like("identity.%")
                )
            )
        )
    said = " ".join(" ".join(a) for a in answers)
    assert not any(b in said for b in balances), answers
    assert "identity.verified" not in [e.action for e in events], answers
    [failed] = [e for e in events if e.action == "identity.failed"]
    assert failed.details["locked"] is True and failed.details["candidates"] == 240, answers
    # The guess that follows finds the check locked: it is handed to a collector, not checked.
    _converse(e2e_stack, phone, ["38000"], prefix="pd")
    with _session(e2e_stack) as session:
        debtor = _debtor_by_phone(session, phone)
        verified = session.scalars(
            select(AuditEvent).where(
                AuditEvent.debtor_id == debtor.id, AuditEvent.action == "identity.verified"
            )
        ).all()
    assert verified == [], answers


def test_questions_during_the_identity_check_cost_no_attempt(e2e_stack: RunningStack) -> None:
    phone = "+33639980017"  # demo debtor C-FR-017 (postcode 51100), used by no other e2e test
    turns = [
        "Bonjour",
        "Combien je dois ?",
        "donnez-moi le détail de ma facture",
        "pourquoi vous me demandez ça ?",
        "pk vous voulez mon code postal",  # once read as a payment-link request
        "donnez-moi le détail de ma facture svp",
        "51100",
    ]
    answers = _converse(e2e_stack, phone, turns, prefix="qs")
    assert all(answers), answers
    with _session(e2e_stack) as session:
        debtor = _debtor_by_phone(session, phone)
        balances = _possible_balances(session, debtor)
        assert not any(b in " ".join(" ".join(a) for a in answers[:6]) for b in balances)
        failures = session.scalars(
            select(AuditEvent).where(
                AuditEvent.debtor_id == debtor.id, AuditEvent.action == "identity.failed"
            )
        ).all()
        assert failures == [], answers
        verified = session.scalars(
            select(AuditEvent).where(
                AuditEvent.debtor_id == debtor.id, AuditEvent.action == "identity.verified"
            )
        ).all()
        assert verified, answers
