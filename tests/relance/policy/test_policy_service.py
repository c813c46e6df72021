"""Policy document: seed, validation, versions (save, rollback, diff) and plan limits."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy.orm import Session

from relance.db.models import AuditEvent, Debtor
from relance.errors import NotFound
from relance.policy import service
from relance.policy.schema import Stage
from relance.policy.service import PolicyInvalid, plan_limits_for
from relance.web.errors import status_for
from tests.factories import make_debtor


def _debtor(db: Session, segment: str = "consumer", number: str = "C-1") -> Debtor:
    return make_debtor(db, customer_number=number, name="Jeanne Martin", segment=segment)


def test_seed_validates_and_has_the_issue_stages() -> None:
    policy = service.seed_policy()
    track = policy.track_for("b2b", "standard")
    assert [(s.key, s.offset_days) for s in track.stages] == [
        ("pre_due", -10),
        ("friendly", 3),
        ("firm", 10),
        ("call", 20),
        ("formal_notice", 30),
        ("legal", 45),
    ]
    assert track.stages[0].channels == ["whatsapp", "sms"]
    assert policy.letters.b2b_rate_pct == pytest.approx(12.15)


def test_high_risk_b2b_gets_its_own_track() -> None:
    policy = service.seed_policy()
    assert policy.track_for("b2b", "high").name == "b2b_high_risk"
    assert policy.track_for("consumer", "high").name == "consumer"


def test_plan_limits_follow_segment_and_amount_band(db: Session) -> None:
    consumer = _debtor(db)
    small = plan_limits_for(db, consumer, 30000)
    assert small.max_installments == 3 and small.band_max_amount_minor == 50000
    middle = plan_limits_for(db, consumer, 50000)  # upper bound is exclusive
    assert middle.max_installments == 6
    assert middle.first_payment_floor(100000) == 10000  # 10 %
    big = plan_limits_for(db, consumer, 10_000_000)
    assert big.allowed_frequencies == ("monthly",) and big.band_max_amount_minor is None
    b2b = plan_limits_for(db, _debtor(db, "b2b", "B-1"), 100000)
    assert b2b.min_installment_minor == 10000 and b2b.segment == "b2b"


def test_invalid_document_is_refused_with_readable_problems(db: Session) -> None:
    doc = copy.deepcopy(service.seed_document())
    doc["tracks"][0]["stages"][1]["offset_days"] = -20  # out of order
    doc["tracks"][1]["stages"][0]["channels"] = ["letter"]  # a message cannot go by letter
    with pytest.raises(PolicyInvalid) as exc:
        service.save_version(db, doc, actor="user:admin@example.com")
    text = " ".join(exc.value.problems)
    assert "strictly increasing" in text and "not allowed" in text
    # One error model: a 422 problem document listing the same lines wherever it is not caught.
    assert (
        exc.value.code == "invalid_policy" and exc.value.details["problems"] == exc.value.problems
    )
    assert status_for(exc.value) == 422
    assert service.active_version(db) == 0


def test_missing_open_band_is_refused() -> None:
    doc = copy.deepcopy(service.seed_document())
    doc["plan_limits"] = [b for b in doc["plan_limits"] if b["segment"] != "b2b"]
    with pytest.raises(PolicyInvalid, match="b2b"):
        service.validate_document(doc)


def test_save_rollback_and_diff(db: Session) -> None:
    consumer = _debtor(db)
    doc = copy.deepcopy(service.seed_document())
    doc["plan_limits"][0]["max_installments"] = 4
    v1 = service.save_version(db, doc, actor="user:admin@example.com", comment="4x")
    assert v1.version == 1 and service.active_version(db) == 1
    assert plan_limits_for(db, consumer, 30000).max_installments == 4

    doc2 = copy.deepcopy(doc)
    doc2["letters"]["deadline_days"] = 15
    service.save_version(db, doc2, actor="user:admin@example.com")
    assert service.active_policy(db).letters.deadline_days == 15
    assert "deadline_days: 15" in service.diff(db, 1, 2)

    back = service.rollback(db, 1, actor="user:admin@example.com")
    assert back.version == 3 and service.active_policy(db).letters.deadline_days == 8
    assert [v.active for v in service.list_versions(db)] == [True, False, False]
    assert "max_installments: 4" in service.diff(db, 0)
    actions = {e.action for e in db.query(AuditEvent).all()}
    assert {"policy.saved", "policy.rolled_back"} <= actions


def test_rollback_to_unknown_version_fails(db: Session) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        service.rollback(db, 42, actor="user:admin@example.com")


def test_late_reasons_plan_first_is_validated_and_defaults_when_absent() -> None:
    assert service.seed_policy().late_reasons.plan_first == [
        "job_loss",
        "illness",
        "hardship",
        "cash_flow",
    ]
    older = copy.deepcopy(service.seed_document())
    del older["late_reasons"]  # a version saved before the section existed still loads
    assert service.validate_document(older).late_reasons.remember_days == 90
    for bad, words in (
        ({"plan_first": ["bored"]}, "late_reasons.plan_first.0"),
        ({"plan_first": ["illness", "illness"]}, "listed twice"),
        ({"remember_days": 0}, "late_reasons.remember_days"),
    ):
        document = copy.deepcopy(service.seed_document()) | {"late_reasons": bad}
        with pytest.raises(PolicyInvalid) as refused:
            service.validate_document(document)
        assert words in str(refused.value)


@pytest.mark.parametrize(("kind", "offset"), [("letter", 0), ("letter", -5), ("legal", 0)])
def test_a_formal_notice_or_legal_step_on_or_before_the_due_date_is_refused(
    kind: str, offset: int
) -> None:
    """Compliance: a mise en demeure claims a sum already due (Code civil art. 1344). A hand edit
    could put it on the due date or before; only stage-offset experiments checked it."""
    channels = ["letter"] if kind == "letter" else []
    with pytest.raises(ValueError, match="before the day after the due date"):
        Stage(
            key="notice",
            offset_days=offset,
            kind=kind,
            channels=channels,
            template="utter_reminder_formal_notice",
            bot_stage="formal_notice",
        )


def test_a_policy_moving_the_formal_notice_to_the_due_date_is_not_saved(db: Session) -> None:
    doc = copy.deepcopy(service.seed_document())
    letters = [
        (t, s)
        for t, track in enumerate(doc["tracks"])
        for s, stage in enumerate(track["stages"])
        if stage["kind"] == "letter"
    ]
    assert letters
    t, s = letters[0]
    doc["tracks"][t]["stages"] = [
        st
        for st in doc["tracks"][t]["stages"]
        if st["kind"] != "letter" or st is doc["tracks"][t]["stages"][s]
    ]
    for stage in doc["tracks"][t]["stages"]:
        if stage["kind"] == "letter":
            stage["offset_days"] = 0
    # keep the stages in order: the earlier stages come before day 0
    doc["tracks"][t]["stages"] = [
        st for st in doc["tracks"][t]["stages"] if st["offset_days"] < 0 or st["kind"] == "letter"
    ]
    with pytest.raises(PolicyInvalid) as exc:
        service.save_version(db, doc, actor="user:admin@example.com")
    assert "before the day after the due date" in " ".join(exc.value.problems)
    assert status_for(exc.value) == 422
    assert service.active_version(db) == 0
