"""Channel-order and stage-offset experiments: each arm is checked against the active policy when
defined (nothing stored on a refusal); the planner gives each debtor their arm's channel order or
stage day; the dispatcher records the exposure and still applies every compliance rule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db import session as db_session
from relance.db.base import utcnow
from relance.db.models import AuditEvent, Debtor, DunningAction, Letter
from relance.dunning.dispatcher import Dispatcher
from relance.dunning.planner import plan
from relance.errors import BadInput
from relance.experiments import promotion, service
from relance.experiments.assignment import arm_of
from relance.experiments.models import Experiment, ExperimentExposure
from relance.nlg.templates_store import active_templates
from relance.policy.schema import Policy, Stage, Track
from relance.policy.service import (
    POLICY_KIND,
    PolicyInvalid,
    active_document,
    active_policy,
    active_version,
    save_version,
    seed_document,
    seed_policy,
)
from tests.factories import make_debtor, make_invoice
from tests.relance.dunning.helpers import FakeAssistant, FakeGateway, utc

MONDAY_11 = "2026-11-23 10:00:00"  # 11:00 in Paris
SMS_FIRST, WHATSAPP_FIRST = ("sms", "whatsapp"), ("whatsapp", "sms")


def _order_spec(**overrides: object) -> service.ExperimentSpec:
    fields: dict[str, object] = {
        "key": "whatsapp-first",
        "name": "WhatsApp first",
        "template": None,
        "factor": service.CHANNEL_ORDER,
        "stage": "friendly",
        "arms": [
            service.ArmSpec("sms first", channels=SMS_FIRST),
            service.ArmSpec("whatsapp first", channels=WHATSAPP_FIRST),
        ],
        "min_sample": 10,
    }
    fields.update(overrides)
    return service.ExperimentSpec(**fields)  # type: ignore[arg-type]


def _offset_spec(*offsets: int, stage: str = "firm", **overrides: object) -> service.ExperimentSpec:
    arms = [service.ArmSpec(f"due{o:+d}", offset_days=o) for o in offsets]
    return _order_spec(
        key="sooner",
        name="Sooner",
        factor=service.STAGE_OFFSET,
        stage=stage,
        arms=arms,
        **overrides,
    )


def _problems(db: Session, spec: service.ExperimentSpec) -> list[str]:
    with pytest.raises(BadInput) as caught:
        service.create(db, spec, actor="u", templates=active_templates(db))
    assert caught.value.code == "experiment_invalid"
    assert db.scalars(select(Experiment)).first() is None
    problems: list[str] = caught.value.details["problems"]
    return problems


def _running(db: Session, spec: service.ExperimentSpec) -> Experiment:
    experiment = service.create(db, spec, actor="u", templates=active_templates(db))
    service.start(db, experiment, actor="u", now=utcnow())
    db.flush()
    return experiment


def _debtors_in_both_arms(db: Session, key: str, **columns: object) -> dict[int, list[Debtor]]:
    """Debtors until each arm has at least two (the hash decides, the test does not)."""
    arms: dict[int, list[Debtor]] = {0: [], 1: []}
    while min(len(v) for v in arms.values()) < 2:
        debtor = make_debtor(db, **columns)  # type: ignore[arg-type]
        arms[arm_of(key, debtor.id, [1.0, 1.0])].append(debtor)
    return arms


def _planned(db: Session, debtor: Debtor) -> list[DunningAction]:
    db.expire_all()
    query = select(DunningAction).where(DunningAction.debtor_id == debtor.id)
    return list(db.scalars(query.order_by(DunningAction.id)))


def _dispatcher(gateway: FakeGateway) -> Dispatcher:
    return Dispatcher(
        db_session.get_sessionmaker(), gateway=gateway, assistant=FakeAssistant(), worker_id="t"
    )


# -- validation ---------------------------------------------------------------------------------


def test_a_channel_order_names_known_channels_the_stage_sends_by(db: Session) -> None:
    arms = [
        service.ArmSpec("a", channels=("sms", "fax")),
        service.ArmSpec("b", channels=("email", "sms")),
        service.ArmSpec("c", channels=("sms", "sms")),
        service.ArmSpec("d", channels=("sms", "fax")),
    ]
    problems = _problems(db, _order_spec(arms=arms))
    assert (
        "arms[0].channels: unknown channel 'fax' (one of sms, whatsapp, voice, letter, email)"
        in problems
    )
    assert any(
        p.startswith("arms[1].channels: the policy does not send stage friendly (")
        and p.endswith(") by email")
        for p in problems
    )
    assert "arms[2].channels: sms is named twice" in problems
    assert "arms[3].channels: the same order as arms[0]" in problems


def test_a_channel_order_for_the_whole_sequence_refuses_a_channel_no_stage_sends_by(
    db: Session,
) -> None:
    arms = [service.ArmSpec("a", channels=SMS_FIRST), service.ArmSpec("b", channels=("voice",))]
    problems = _problems(db, _order_spec(stage=None, arms=arms))
    assert problems == ["arms[1].channels: no message stage of the policy sends by voice"]


def test_a_channel_order_is_planned_a_fixed_split_with_no_channel_filter(db: Session) -> None:
    spec = _order_spec(
        stage="call",
        allocation="thompson",
        channel="sms",
        template="utter_reminder_firm",
        arms=[service.ArmSpec("a", channels=SMS_FIRST, hour=10), service.ArmSpec("b", 1)],
    )
    problems = _problems(db, spec)
    assert any(p.startswith("stage: a message stage of the active policy") for p in problems)
    assert any(p.startswith("allocation: fixed for a channel-order experiment") for p in problems)
    assert any(p.startswith("template: a channel-order experiment sends") for p in problems)
    assert any(p.startswith("channel: a channel-order experiment varies") for p in problems)
    assert any(p.startswith("arms[0].hour: only a send-hour experiment") for p in problems)
    assert any(p.startswith("arms[1].variant_index: only a wording experiment") for p in problems)
    assert "arms[1].channels: the channels this arm tries, in order" in problems


@pytest.mark.parametrize(
    ("offsets", "stage", "says"),
    [
        (
            (10, 3),
            "firm",
            "arms[1].offset_days: due+3 would move firm to or before friendly (due+3)",
        ),
        ((10, 20), "firm", "arms[1].offset_days: due+20 would move firm to or after call (due+20)"),
        ((-10, 2), "pre_due", "arms[1].offset_days: due+2 would move pre_due across the due date"),
        ((30, 30), "formal_notice", "arms[1].offset_days: two arms reach the stage at due+30"),
        ((20, 25), "call", "stage: call is a call stage; a stage-offset experiment moves a"),
        ((3, 4), "nope", "stage: a message or letter stage of the active policy (pre_due,"),
    ],
)
def test_an_offset_that_breaks_the_ladder_is_refused(
    db: Session, offsets: tuple[int, ...], stage: str, says: str
) -> None:
    problems = _problems(db, _offset_spec(*offsets, stage=stage))
    assert any(p.startswith(says) for p in problems), problems


def test_a_formal_notice_is_never_moved_before_the_law_allows() -> None:
    # A ladder where the letter could go as early as the due date without passing a neighbour:
    # only the rule of law refuses it.
    stages = [
        Stage(key="pre_due", offset_days=-10, kind="message", channels=["sms"],
              template="utter_reminder_pre_due", bot_stage="pre_due"),
        Stage(key="formal_notice", offset_days=5, kind="letter", channels=["letter"],
              template="utter_reminder_formal_notice_announce", bot_stage="formal_notice"),
    ]  # fmt: skip
    policy = _policy_with([Track(name="all", stages=stages)])
    problems = service.policy_problems(_offset_spec(5, 0, stage="formal_notice"), policy)
    assert problems == [
        "arms[1].offset_days: the due date would move formal_notice before the law allows: a "
        "formal notice (mise en demeure) claims a sum already due, from due+1"
    ]
    assert service.policy_problems(_offset_spec(5, 1, stage="formal_notice"), policy) == []


def _policy_with(tracks: list[Track]) -> Policy:
    return seed_policy().model_copy(update={"tracks": tracks})


# -- channel order: planner and dispatcher --------------------------------------------------


@freeze_time(MONDAY_11)
def test_each_debtor_is_planned_in_their_arms_channel_order(db: Session) -> None:
    experiment = _running(db, _order_spec())
    arms = _debtors_in_both_arms(db, experiment.key, channels=("sms", "whatsapp"))
    preferring = make_debtor(db, channels=("sms", "whatsapp"), preferred_channel="sms")
    debtors = [*arms[0], *arms[1], preferring]
    for debtor in debtors:
        make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    report = plan(db, debtor_ids=[d.id for d in debtors])
    assert report.counts["channel_order_applied"] == len(debtors)
    for arm, order in ((0, SMS_FIRST), (1, WHATSAPP_FIRST)):
        for debtor in arms[arm]:
            [action] = _planned(db, debtor)
            assert (action.stage, tuple(action.channels), action.channel) == (
                "friendly",
                order,
                order[0],
            )
    # The debtor's own preference (portal) still comes first, whatever the arm.
    [action] = _planned(db, preferring)
    assert action.channels[0] == action.channel == "sms"


@freeze_time(MONDAY_11)
def test_a_channel_order_only_lists_channels_the_debtor_can_be_reached_on(db: Session) -> None:
    experiment = _running(db, _order_spec())
    arms = _debtors_in_both_arms(db, experiment.key, channels=("sms",))
    for debtor in arms[1]:
        make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    plan(db, debtor_ids=[d.id for d in arms[1]])
    for debtor in arms[1]:
        [action] = _planned(db, debtor)
        assert action.channels == ["sms"]  # no WhatsApp contact: nothing added


@freeze_time(MONDAY_11)
def test_the_arms_channel_goes_out_with_its_exposure_and_the_window_still_holds(
    db: Session,
) -> None:
    experiment = _running(db, _order_spec())
    arms = _debtors_in_both_arms(db, experiment.key, channels=("sms", "whatsapp"))
    debtors = [*arms[0], *arms[1]]
    for debtor in debtors:
        make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    plan(db, debtor_ids=[d.id for d in debtors])
    db.flush()
    gateway = FakeGateway()
    # 21:30 in Paris: outside the contact windows whatever the arm; nobody is exposed.
    assert _dispatcher(gateway).run(now=utc(2026, 11, 23, 20, 30)) == {"deferred": len(debtors)}
    assert gateway.sent == [] and db.scalars(select(ExperimentExposure)).first() is None
    # Tuesday 11:00: each debtor gets their arm's first channel, recorded with the arm.
    assert _dispatcher(gateway).run(now=utc(2026, 11, 24, 10)) == {"sent": len(debtors)}
    sent = {s["debtor_id"]: s["channel"] for s in gateway.sent}
    assert {sent[d.id] for d in arms[0]} == {"sms"}
    assert {sent[d.id] for d in arms[1]} == {"whatsapp"}
    db.expire_all()
    exposed = {
        e.debtor_id: (e.arm_index, e.channel, e.stage)
        for e in db.scalars(select(ExperimentExposure))
    }
    assert exposed == {
        d.id: (arm, "sms" if arm == 0 else "whatsapp", "friendly")
        for arm, group in arms.items()
        for d in group
    }


# -- stage offset: planner and dispatcher ---------------------------------------------------


@freeze_time(MONDAY_11)
def test_each_debtor_reaches_the_stage_on_their_arms_day(db: Session) -> None:
    experiment = _running(db, _offset_spec(10, 7))
    arms = _debtors_in_both_arms(db, experiment.key, channels=("sms",))
    debtors = [*arms[0], *arms[1]]
    for debtor in debtors:
        make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    plan(db, debtor_ids=[d.id for d in debtors])  # day 3: friendly for everyone
    assert {a.stage for d in debtors for a in _planned(db, d)} == {"friendly"}
    with freeze_time("2026-11-28 10:00:00"):  # day 8
        plan(db, debtor_ids=[d.id for d in debtors])
    for debtor in arms[0]:  # the control keeps due+10
        assert [a.stage for a in _planned(db, debtor)] == ["friendly"]
    for debtor in arms[1]:  # the arm reaches firm at due+7
        assert [a.stage for a in _planned(db, debtor)] == ["friendly", "firm"]
    with freeze_time("2026-11-30 10:00:00"):  # day 10: the control's day
        plan(db, debtor_ids=[d.id for d in debtors])
    for debtor in debtors:
        assert [a.stage for a in _planned(db, debtor)] == ["friendly", "firm"]


@freeze_time(MONDAY_11)
def test_a_pre_due_stage_moved_earlier_is_planned_that_far_ahead(db: Session) -> None:
    experiment = _running(db, _offset_spec(-10, -14, stage="pre_due"))
    arms = _debtors_in_both_arms(db, experiment.key, channels=("sms",))
    debtors = [*arms[0], *arms[1]]
    for debtor in debtors:
        make_invoice(db, debtor, due=utcnow().date() + timedelta(days=12))
    plan(db, debtor_ids=[d.id for d in debtors])
    assert all(_planned(db, d) == [] for d in arms[0])
    assert all([a.stage for a in _planned(db, d)] == ["pre_due"] for d in arms[1])


@freeze_time(MONDAY_11)
def test_the_moved_stage_goes_out_with_its_exposure_within_the_rules(db: Session) -> None:
    experiment = _running(db, _offset_spec(10, 7))
    arms = _debtors_in_both_arms(db, experiment.key, channels=("sms",))
    debtors = [*arms[0], *arms[1]]
    for debtor in debtors:
        make_invoice(db, debtor, due=utcnow().date() - timedelta(days=8))
    plan(db, debtor_ids=[d.id for d in debtors])
    db.flush()
    gateway = FakeGateway()
    # Sunday: no contact, whatever the arm's day.
    assert _dispatcher(gateway).run(now=utc(2026, 11, 29, 10)) == {"deferred": len(debtors)}
    assert db.scalars(select(ExperimentExposure)).first() is None
    assert _dispatcher(gateway).run(now=utc(2026, 11, 30, 10)) == {"sent": len(debtors)}
    db.expire_all()
    exposures = db.scalars(select(ExperimentExposure)).all()
    # Only the firm reminders are the experiment's contacts (the control sent friendly).
    assert {(e.debtor_id, e.arm_index, e.stage) for e in exposures} == {
        (d.id, 1, "firm") for d in arms[1]
    }


@freeze_time(MONDAY_11)
def test_a_formal_notice_moved_earlier_is_queued_with_its_exposure(db: Session) -> None:
    experiment = _running(db, _offset_spec(30, 25, stage="formal_notice"))
    arms = _debtors_in_both_arms(db, experiment.key)  # no phone: calls and notices skipped
    debtors = [*arms[0], *arms[1]]
    for debtor in debtors:
        make_invoice(db, debtor, due=utcnow().date() - timedelta(days=27))
    plan(db, debtor_ids=[d.id for d in debtors])
    db.flush()
    assert _dispatcher(FakeGateway()).run() == {"letter": len(arms[1])}
    db.expire_all()
    assert {letter.debtor_id for letter in db.scalars(select(Letter))} == {d.id for d in arms[1]}
    exposures = db.scalars(select(ExperimentExposure)).all()
    assert {(e.debtor_id, e.arm_index, e.channel, e.stage) for e in exposures} == {
        (d.id, 1, "letter", "formal_notice") for d in arms[1]
    }
    assert active_policy(db).tracks[-1].stages[4].offset_days == 30  # the policy is unchanged


# -- promotion: the winner becomes a new dunning policy version ---------------------------------


def _promoted_actions(db: Session) -> list[tuple[str, object]]:
    return [
        (e.action, e.details.get("policy_version"))
        for e in db.scalars(select(AuditEvent).order_by(AuditEvent.id))
        if e.action in ("policy.saved", "experiment.promoted")
    ]


def test_promoting_a_channel_order_reorders_the_stage_in_a_new_audited_policy_version(
    db: Session,
) -> None:
    experiment = _running(db, _order_spec())
    row = promotion.promote(db, experiment, 1, actor="user:admin@example.com", now=utcnow())
    assert row.kind == POLICY_KIND and active_version(db) == row.version == 1
    seed = {t.name: t for t in seed_policy().tracks}
    for track in active_policy(db).tracks:
        for stage, before in zip(track.stages, seed[track.name].stages, strict=True):
            expected = ["whatsapp", "sms"] if stage.key == "friendly" else before.channels
            assert stage.channels == expected, (track.name, stage.key)
    assert experiment.status == "finished" and experiment.promoted_arm == 1
    assert _promoted_actions(db) == [("policy.saved", None), ("experiment.promoted", 1)]
    assert "promote arm whatsapp first" in (row.comment or "")


def test_promoting_a_one_segment_experiment_splits_a_shared_track(db: Session) -> None:
    document = seed_document()
    shared = {**document["tracks"][2], "name": "everyone", "segment": "*"}  # the consumer track
    save_version(db, {**document, "tracks": [*document["tracks"][:2], shared]}, actor="u")
    experiment = _running(db, _order_spec(segment="consumer"))
    promotion.promote(db, experiment, 1, actor="u", now=utcnow())
    policy = active_policy(db)
    assert [(t.name, t.segment) for t in policy.tracks] == [
        ("b2b_high_risk", "b2b"),
        ("b2b", "b2b"),
        ("everyone_consumer", "consumer"),
        ("everyone", "*"),
    ]

    def friendly(track: Track) -> list[str]:
        return next(list(s.channels) for s in track.stages if s.key == "friendly")

    assert friendly(policy.track_for("consumer", "standard")) == ["whatsapp", "sms"]
    assert friendly(policy.tracks[3]) == friendly(policy.track_for("b2b", "standard"))
    assert friendly(policy.tracks[3]) == ["sms", "whatsapp"]  # the other segment keeps it


@freeze_time(MONDAY_11)
def test_promoting_a_stage_offset_moves_the_stage_for_every_debtor(db: Session) -> None:
    experiment = _running(db, _offset_spec(10, 7))
    row = promotion.promote(db, experiment, 1, actor="user:admin@example.com", now=utcnow())
    assert {
        s.offset_days for t in active_policy(db).tracks for s in t.stages if s.key == "firm"
    } == {7}
    assert _promoted_actions(db) == [("policy.saved", None), ("experiment.promoted", row.version)]
    debtors = [make_debtor(db, channels=("sms",)) for _ in range(3)]
    for debtor in debtors:
        make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    with freeze_time("2026-11-28 10:00:00"):  # day 8: firm is due for everyone now
        plan(db, debtor_ids=[d.id for d in debtors])
    for debtor in debtors:
        assert [a.stage for a in _planned(db, debtor)] == ["firm"]
    assert db.scalars(select(ExperimentExposure)).all() == []


@pytest.mark.parametrize("segment", [None, "consumer"])
def test_promoting_the_arm_the_policy_already_has_adds_no_identical_version(
    db: Session, segment: str | None
) -> None:
    """The control won: the experiment ends, and the policy history gets no copy of the version
    in force (nor a track split for one segment that changes nothing)."""
    document = seed_document()
    if segment is not None:  # the consumer track shared by both segments
        shared = {**document["tracks"][2], "name": "everyone", "segment": "*"}
        document = {**document, "tracks": [*document["tracks"][:2], shared]}
    in_force = save_version(db, document, actor="u")
    extra = {"segment": segment} if segment else {}
    experiment = _running(db, _order_spec(**extra))  # friendly is sms first in every track
    row = promotion.promote(db, experiment, 0, actor="user:admin@example.com", now=utcnow())
    assert row.id == in_force.id and active_version(db) == in_force.version == 1
    assert active_document(db) == document
    assert experiment.status == "finished" and experiment.promoted_arm == 0
    assert _promoted_actions(db) == [("policy.saved", None), ("experiment.promoted", 1)]
    promoted = db.scalars(select(AuditEvent).where(AuditEvent.action == "experiment.promoted"))
    assert promoted.one().details["policy_unchanged"] is True


def test_a_stage_offset_the_policy_in_force_no_longer_allows_is_refused(db: Session) -> None:
    experiment = _running(db, _offset_spec(10, 7))
    document = seed_document()
    consumer = document["tracks"][2]
    stages = [{**s, "offset_days": 8} if s["key"] == "friendly" else s for s in consumer["stages"]]
    save_version(
        db, {**document, "tracks": [*document["tracks"][:2], {**consumer, "stages": stages}]},
        actor="u",
    )  # fmt: skip
    with pytest.raises(PolicyInvalid) as caught:
        promotion.promote(db, experiment, 1, actor="u", now=utcnow())
    assert caught.value.code == "invalid_policy"
    assert "would move firm to or before friendly (due+8) in the consumer track" in (
        caught.value.message
    )
    assert active_version(db) == 1 and experiment.status == "running"


def test_a_language_restricted_channel_order_cannot_become_the_policy(db: Session) -> None:
    experiment = _running(db, _order_spec(language="fr"))
    with pytest.raises(promotion.PolicyCannotExpress):
        promotion.promote(db, experiment, 1, actor="u", now=utcnow())
    assert active_version(db) == 0 and experiment.promoted_arm is None
