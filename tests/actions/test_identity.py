"""Identity form validation, its question, and wrong person."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.identity import ActionAskIdentityAnswer, ActionMarkWrongPerson, ValidateIdentityForm
from relance.db.models import AuditEvent, Contact
from tests.actions.conftest import make_tracker, responses, slots_for


def test_right_postcode_verifies(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    tracker = make_tracker(slots_for(owner, conv, identity_verified=False))
    result = ValidateIdentityForm().validate_identity_answer("75 011", dispatcher, tracker, {})
    assert result == {"identity_answer": "checked", "identity_verified": True,
                      "identity_attempts": 0}
    db.refresh(conv)
    assert conv.identity_verified_at is not None


def test_spoken_postcode_verifies(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    tracker = make_tracker(slots_for(owner, conv, identity_verified=False))
    result = ValidateIdentityForm().validate_identity_answer(
        "sept cinq zéro un un", dispatcher, tracker, {})
    assert result["identity_verified"] is True


def test_wrong_answer_asks_again_then_locks(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    form = ValidateIdentityForm()
    first = form.validate_identity_answer(
        "69003", dispatcher, make_tracker(slots_for(owner, conv, identity_verified=False)), {})
    assert first == {"identity_answer": None, "identity_attempts": 1}
    assert responses(dispatcher) == ["utter_identity_mismatch"]
    assert dispatcher.messages[0]["attempts_left"] == 2
    last = form.validate_identity_answer(
        "69003", dispatcher,
        make_tracker(slots_for(owner, conv, identity_verified=False, identity_attempts=2)), {})
    assert last == {"identity_answer": "failed", "identity_verified": False,
                    "identity_attempts": 3}
    failures = db.scalars(select(AuditEvent).where(AuditEvent.action == "identity.failed")).all()
    assert [f.details["locked"] for f in failures] == [False, True]


def test_unknown_debtor_never_verifies(db: Session, dispatcher) -> None:
    tracker = make_tracker({"debtor_id": None, "identity_verified": False})
    result = ValidateIdentityForm().validate_identity_answer("75011", dispatcher, tracker, {})
    assert result["identity_verified"] is False and result["identity_answer"] == "failed"


def test_question_names_the_configured_check(dispatcher, settings) -> None:
    ActionAskIdentityAnswer().run(dispatcher, make_tracker({"identity_attempts": 1}), {})
    [message] = dispatcher.messages
    assert message["response"] == "utter_ask_identity_answer"
    assert message["identity_kind"] == "postcode" and message["attempts_left"] == 2


def test_wrong_person_flags_the_contact(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    events = ActionMarkWrongPerson().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    contact = db.scalars(select(Contact).where(Contact.debtor_id == owner.id)).one()
    assert contact.status == "wrong_person"
    assert {"event": "slot", "name": "identity_verified", "value": False,
            "timestamp": None} in events
    assert dispatcher.messages == []  # discloses nothing
