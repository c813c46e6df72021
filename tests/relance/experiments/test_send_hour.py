"""Send-hour experiments: each arm is a local hour inside the contact windows; the planner
schedules the stage's contacts at the debtor's arm's hour, the dispatcher records the exposure
and still applies every compliance rule at the send."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from relance.db import session as db_session
from relance.db.base import utcnow
from relance.db.models import AuditEvent, Debtor, DunningAction
from relance.dunning.dispatcher import Dispatcher
from relance.dunning.planner import plan
from relance.errors import BadInput, Conflict
from relance.experiments import promotion, service
from relance.experiments.assignment import arm_of
from relance.experiments.models import Experiment, ExperimentExposure
from relance.nlg.templates_store import active_templates
from relance.policy.service import (
    POLICY_KIND,
    PolicyInvalid,
    active_policy,
    active_version,
    seed_document,
    validate_document,
)
from tests.factories import make_debtor, make_invoice
from tests.relance.dunning.helpers import FakeAssistant, FakeGateway, utc

PARIS = ZoneInfo("Europe/Paris")
MONDAY_11 = "2026-11-23 10:00:00"  # 11:00 in Paris
HOURS = (10, 18)  # control 10:00, variant 18:00: both inside France's windows


def _spec(**overrides: object) -> service.ExperimentSpec:
    fields: dict[str, object] = {
        "key": "evening",
        "name": "Evening reminders",
        "template": None,
        "factor": "send_hour",
        "stage": "friendly",
        "arms": [service.ArmSpec("morning", hour=HOURS[0]), service.ArmSpec("evening", hour=18)],
        "min_sample": 10,
    }
    fields.update(overrides)
    return service.ExperimentSpec(**fields)  # type: ignore[arg-type]


def _running(db: Session, **overrides: object) -> Experiment:
    experiment = service.create(
        db, _spec(**overrides), actor="user:admin@example.com", templates=active_templates(db)
    )
    service.start(db, experiment, actor="user:admin@example.com", now=utcnow())
    db.flush()
    return experiment


def _planned(db: Session, n: int) -> list[Debtor]:
    debtors = [make_debtor(db, channels=("sms", "whatsapp")) for _ in range(n)]
    for debtor in debtors:
        make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    plan(db, debtor_ids=[d.id for d in debtors])
    db.flush()  # what the planner's caller commits, the dispatcher's sessions read
    return debtors


def _scheduled(db: Session, debtor: Debtor) -> list[tuple[str, object]]:
    rows = db.scalars(select(DunningAction).where(DunningAction.debtor_id == debtor.id)).all()
    return [
        (a.stage, a.next_attempt_at.astimezone(PARIS) if a.next_attempt_at else None) for a in rows
    ]


@freeze_time(MONDAY_11)
def test_the_planner_schedules_each_debtor_at_their_arms_hour(db: Session) -> None:
    experiment = _running(db)
    debtors = _planned(db, 12)
    arms = {d.id: arm_of(experiment.key, d.id, [1.0, 1.0]) for d in debtors}
    assert set(arms.values()) == {0, 1}
    for debtor in debtors:
        [(stage, at)] = _scheduled(db, debtor)
        assert stage == "friendly"
        # 10:00 has passed at 11:00: the morning arm goes tomorrow; the evening arm today.
        expected = (
            utc(2026, 11, 24, 9).astimezone(PARIS)
            if arms[debtor.id] == 0
            else utc(2026, 11, 23, 17).astimezone(PARIS)
        )
        assert at == expected


@freeze_time(MONDAY_11)
def test_a_debtor_keeps_the_arm_of_their_first_exposure(db: Session) -> None:
    experiment = _running(db)
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    hashed = arm_of(experiment.key, debtor.id, [1.0, 1.0])
    db.add(
        ExperimentExposure(
            experiment_id=experiment.id,
            arm_index=1 - hashed,  # an earlier contact's arm, whatever the hash says now
            debtor_id=debtor.id,
            channel="sms",
            stage="pre_due",
            invoice_ids=[],
            exposed_at=utcnow() - timedelta(days=10),
        )
    )
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    plan(db, debtor_ids=[debtor.id])
    [(_, at)] = _scheduled(db, debtor)
    assert at is not None and at.hour == HOURS[1 - hashed]


@freeze_time(MONDAY_11)
def test_the_contact_goes_out_at_the_arm_hour_with_its_exposure_recorded(db: Session) -> None:
    experiment = _running(db)
    debtors = _planned(db, 6)
    evening = [d for d in debtors if arm_of(experiment.key, d.id, [1.0, 1.0]) == 1]
    gateway = FakeGateway()
    dispatcher = Dispatcher(
        db_session.get_sessionmaker(), gateway=gateway, assistant=FakeAssistant(), worker_id="t"
    )
    assert dispatcher.run() == {}  # 11:00: nobody's hour yet
    assert dispatcher.run(now=utc(2026, 11, 23, 17, 1)) == {"sent": len(evening)}
    db.expire_all()
    exposures = db.scalars(select(ExperimentExposure)).all()
    assert {e.debtor_id for e in exposures} == {d.id for d in evening}
    assert {(e.arm_index, e.stage) for e in exposures} == {(1, "friendly")}


@freeze_time("2026-11-27 17:30:00")  # Friday 18:30 in Paris
def test_compliance_still_closes_the_weekend_at_the_send(db: Session) -> None:
    experiment = _running(db)
    debtors = _planned(db, 8)
    for debtor in debtors:
        [(_, at)] = _scheduled(db, debtor)
        # No Saturday or Sunday: the next open day at the arm's hour is Monday.
        hour = HOURS[arm_of(experiment.key, debtor.id, [1.0, 1.0])]
        assert at == utc(2026, 11, 30, hour - 1).astimezone(PARIS)
    # Whatever the schedule, a send on Sunday at the arm's hour is held back by the contact check.
    db.execute(update(DunningAction).values(next_attempt_at=utc(2026, 11, 29, 9)))
    dispatcher = Dispatcher(
        db_session.get_sessionmaker(),
        gateway=FakeGateway(),
        assistant=FakeAssistant(),
        worker_id="t",
    )
    outcomes = dispatcher.run(now=utc(2026, 11, 29, 17))  # Sunday 18:00 in Paris
    assert outcomes == {"deferred": len(debtors)}
    assert db.scalars(select(ExperimentExposure)).first() is None


@pytest.mark.parametrize(
    ("hour", "says"),
    [
        (9, "9:00-9:59 is outside the FR contact windows (10:00-13:00, 14:00-20:00)"),
        (13, "13:00-13:59 is outside the FR contact windows"),
        (20, "20:00-20:59 is outside the FR contact windows"),
    ],
)
def test_an_hour_outside_the_contact_windows_is_refused_and_nothing_stored(
    db: Session, hour: int, says: str
) -> None:
    arms = [service.ArmSpec("morning", hour=10), service.ArmSpec("odd", hour=hour)]
    with pytest.raises(BadInput) as caught:
        service.create(db, _spec(arms=arms), actor="u", templates=active_templates(db))
    assert any(says in p for p in caught.value.details["problems"])
    assert db.scalars(select(Experiment)).first() is None


def test_a_send_hour_experiment_names_a_message_stage_and_a_fixed_split(db: Session) -> None:
    spec = _spec(stage="legal", allocation="thompson", template="utter_reminder_firm")
    with pytest.raises(BadInput) as caught:
        service.create(db, spec, actor="u", templates=active_templates(db))
    problems = caught.value.details["problems"]
    assert any(p.startswith("stage: a message stage of the active policy") for p in problems)
    assert any(p.startswith("allocation: fixed") for p in problems)
    assert any(p.startswith("template: a send-hour experiment") for p in problems)


def test_a_send_hour_and_a_wording_experiment_never_share_a_contact(db: Session) -> None:
    _running(db)
    wording = service.create(
        db,
        service.ExperimentSpec(
            key="words",
            name="Words",
            template="utter_reminder_discreet",
            arms=[service.ArmSpec("a", 1), service.ArmSpec("b", 0)],
        ),
        actor="u",
        templates=active_templates(db),
    )
    with pytest.raises(Conflict) as caught:
        service.start(db, wording, actor="u", now=utcnow())
    assert "'evening' is running on the same contacts" in caught.value.message


def test_promotion_makes_the_winning_hour_the_stages_send_hour_in_a_new_policy_version(
    db: Session,
) -> None:
    experiment = _running(db)
    row = promotion.promote(db, experiment, 1, actor="user:admin@example.com", now=utcnow())
    assert row.kind == POLICY_KIND and row.active and active_version(db) == row.version
    policy = active_policy(db)
    for track in policy.tracks:
        hours = {s.key: s.send_hour for s in track.stages}
        assert hours.pop("friendly") == 18
        assert set(hours.values()) == {None}  # the other stages untouched
    assert experiment.status == "finished" and experiment.promoted_arm == 1
    actions = [
        (e.action, e.details.get("policy_version"))
        for e in db.scalars(select(AuditEvent).order_by(AuditEvent.id))
        if e.action in ("policy.saved", "experiment.promoted")
    ]
    assert actions == [("policy.saved", None), ("experiment.promoted", row.version)]
    with pytest.raises(Conflict):
        promotion.promote(db, experiment, 1, actor="user:admin@example.com", now=utcnow())


@freeze_time(MONDAY_11)
def test_after_promotion_every_debtor_of_the_stage_is_planned_at_the_winning_hour(
    db: Session,
) -> None:
    promotion.promote(db, _running(db), 1, actor="u", now=utcnow())
    for debtor in _planned(db, 4):  # no experiment running any more: the policy's hour
        [(stage, at)] = _scheduled(db, debtor)
        assert (stage, at) == ("friendly", utc(2026, 11, 23, 17).astimezone(PARIS))
    assert db.scalars(select(ExperimentExposure)).all() == []


@pytest.mark.parametrize(
    ("restriction", "words"),
    [({"language": "en"}, "no per-language setting"), ({"channel": "sms"}, "not per channel")],
)
def test_a_send_hour_the_policy_cannot_express_is_refused_and_nothing_saved(
    db: Session, restriction: dict[str, str], words: str
) -> None:
    experiment = _running(db, **restriction)
    with pytest.raises(promotion.PolicyCannotExpress) as caught:
        promotion.promote(db, experiment, 1, actor="u", now=utcnow())
    assert caught.value.code == "policy_cannot_express" and words in caught.value.message
    assert active_version(db) == 0 and experiment.status == "running"


def test_a_send_hour_outside_the_contact_windows_is_refused_by_the_policy_schema() -> None:
    stage = seed_document()["tracks"][0]["stages"][1]
    with pytest.raises(PolicyInvalid) as caught:
        validate_document(_with_stage(seed_document(), {**stage, "send_hour": 21}))
    assert "outside the FR contact windows" in caught.value.message
    call = seed_document()["tracks"][0]["stages"][3]
    with pytest.raises(PolicyInvalid) as caught:
        validate_document(_with_stage(seed_document(), {**call, "send_hour": 10}, index=3))
    assert "only a message stage has a send_hour" in caught.value.message


def _with_stage(document: dict[str, Any], stage: dict[str, Any], index: int = 1) -> dict[str, Any]:
    tracks = [dict(t) for t in document["tracks"]]
    tracks[0]["stages"] = [stage if i == index else s for i, s in enumerate(tracks[0]["stages"])]
    return {**document, "tracks": tracks}
