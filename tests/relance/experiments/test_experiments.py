"""Experiments end to end on the database: the dispatcher sends each debtor their arm's variant
and records the exposure, /nlg answers with the same arm, outcomes come from the ledger within the
window, guard rails stop an arm, promotion writes a wording version."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from relance import versioning
from relance.conversations.ports import DeliveryError
from relance.db import session as db_session
from relance.db.base import utcnow
from relance.db.models import AuditEvent, Contact, Debtor, DunningAction, Payment
from relance.db.models.enums import Direction
from relance.dunning.dispatcher import Dispatcher
from relance.dunning.planner import plan
from relance.errors import BadInput, Conflict
from relance.experiments import promotion, results, service
from relance.experiments.assignment import arm_of
from relance.experiments.models import Experiment, ExperimentExposure
from relance.nlg.templates_store import WORDING_KIND, active_templates
from relance.rasa_client import AssistantUnavailable
from relance.settings import Settings
from tests.factories import (
    make_conversation,
    make_debtor,
    make_handoff,
    make_invoice,
    make_message,
    make_payment,
    make_promise,
)
from tests.relance.dunning.helpers import FakeAssistant, FakeGateway

MONDAY_11 = "2026-11-23 10:00:00"  # 11:00 in Paris
TEMPLATE = "utter_reminder_discreet"  # the first reminder, before anyone answered
IMPORTANT = "message important"  # only variant 0 says it


def _experiment(db: Session, **overrides: object) -> Experiment:
    fields: dict[str, object] = {
        "key": "discreet-words",
        "name": "Discreet first reminder",
        "template": TEMPLATE,
        "arms": [service.ArmSpec("plain", 1), service.ArmSpec("important", 0)],
        "min_sample": 10,
        "window_days": 7,
    }
    fields.update(overrides)
    spec = service.ExperimentSpec(**fields)  # type: ignore[arg-type]
    experiment = service.create(
        db, spec, actor="user:admin@example.com", templates=active_templates(db)
    )
    service.start(db, experiment, actor="user:admin@example.com", now=utcnow())
    db.flush()
    return experiment


def _expose(db: Session, experiment: Experiment, arm: int, at: object, n: int) -> list[int]:
    ids = []
    for _ in range(n):
        debtor = make_debtor(db, channels=("sms", "whatsapp"))
        db.add(
            ExperimentExposure(
                experiment_id=experiment.id,
                arm_index=arm,
                debtor_id=debtor.id,
                channel="sms",
                stage="soft",
                invoice_ids=[],
                exposed_at=at,
            )
        )
        ids.append(debtor.id)
    db.flush()
    return ids


def _message_of(db: Session, exposure: ExperimentExposure) -> int | None:
    """The message an exposure's contact sent: its dunning group's."""
    return db.scalar(
        select(DunningAction.message_id).where(
            DunningAction.group_key == exposure.group_key, DunningAction.status == "sent"
        )
    )


def _contact(
    db: Session, experiment: Experiment, debtor_id: int, **overrides: object
) -> service.ArmChoice | None:
    """What the dispatcher does for one contact: the arm, its exposure recorded."""
    fields: dict[str, object] = {
        "debtor_id": debtor_id,
        "channel": "sms",
        "stage": "soft",
        "group_key": None,
        "invoice_ids": [],
        "now": utcnow(),
    }
    fields.update(overrides)
    return service.expose(db, service.RunningExperiment.of(experiment), **fields)  # type: ignore[arg-type]


@freeze_time(MONDAY_11)
def test_each_debtor_gets_their_arm_in_the_reminder_and_in_the_assistants_replies(
    db: Session, client: TestClient, settings: Settings
) -> None:
    experiment = _experiment(db)
    debtors = [make_debtor(db, channels=("sms", "whatsapp")) for _ in range(8)]
    for debtor in debtors:
        make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    plan(db, debtor_ids=[d.id for d in debtors])
    gateway = FakeGateway()
    dispatcher = Dispatcher(
        db_session.get_sessionmaker(),
        gateway=gateway,
        assistant=FakeAssistant(error=AssistantUnavailable("down")),  # rendered locally
        worker_id="test",
    )
    assert dispatcher.run() == {"sent": 8}
    db.expire_all()
    exposures = {e.debtor_id: e for e in db.scalars(select(ExperimentExposure)).all()}
    assert set(exposures) == {d.id for d in debtors}
    assert {e.arm_index for e in exposures.values()} == {0, 1}  # both arms used
    by_message = {s["message_id"]: s["body"] for s in gateway.sent}
    for debtor in debtors:
        exposure = exposures[debtor.id]
        assert _message_of(db, exposure) in by_message
        assert (IMPORTANT in by_message[_message_of(db, exposure)]) == (exposure.arm_index == 1)
        # The assistant's reply through /nlg uses the same arm for this debtor.
        answer = client.post(
            f"/nlg?token={settings.nlg_token}",
            json={
                "response": TEMPLATE,
                "tracker": {"sender_id": f"debtor-{debtor.id}", "slots": {"language": "fr"}},
            },
        )
        assert answer.status_code == 200, answer.text
        assert (IMPORTANT in answer.json()["text"]) == (exposure.arm_index == 1)
    sent = db.scalars(select(AuditEvent).where(AuditEvent.action == "dunning.sent")).all()
    assert all(e.details["experiment"] == experiment.id for e in sent)


def test_assignment_is_kept_even_when_the_shares_move(db: Session) -> None:
    experiment = _experiment(db, allocation="thompson")
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    first = _contact(db, experiment, debtor.id)
    assert first is not None
    experiment.weights = [1.0, 0.0] if first.arm_index == 1 else [0.0, 1.0]
    again = _contact(db, experiment, debtor.id, channel="whatsapp")
    assert again is not None and again.arm_index == first.arm_index
    assert again.variant_index == first.variant_index
    exposures = db.scalars(select(ExperimentExposure).order_by(ExperimentExposure.id)).all()
    assert [(e.arm_index, e.channel) for e in exposures] == [
        (first.arm_index, "sms"),
        (first.arm_index, "whatsapp"),
    ]


def test_the_arm_comes_from_the_hash_until_the_debtor_has_one(db: Session) -> None:
    """Deterministic per debtor: the same experiment key and debtor give the same arm in a
    fresh database, and about the admin's split over many debtors."""
    experiment = _experiment(db, arms=[service.ArmSpec("a", 1), service.ArmSpec("b", 0, 3.0)])
    debtors = [make_debtor(db, channels=("sms", "whatsapp")).id for _ in range(200)]
    arms = [_contact(db, experiment, d) for d in debtors]
    expected = [arm_of(experiment.key, d, [1.0, 3.0]) for d in debtors]
    assert [c.arm_index for c in arms if c is not None] == expected
    assert 0.65 < sum(expected) / len(expected) < 0.85  # about 3 in 4 in arm 1


def test_outcomes_count_only_inside_the_window_and_only_matured_debtors(db: Session) -> None:
    experiment = _experiment(db)
    t0 = utcnow() - timedelta(days=10)
    paid_in, paid_late, paid_before, nothing = _expose(db, experiment, 1, t0, 4)
    [fresh] = _expose(db, experiment, 1, utcnow() - timedelta(days=2), 1)  # window still open
    for debtor_id, at in (
        (paid_in, t0 + timedelta(days=3)),
        (paid_late, t0 + timedelta(days=8)),
        (paid_before, t0 - timedelta(days=1)),
        (fresh, utcnow() - timedelta(days=1)),
    ):
        db.add(
            Payment(
                debtor_id=debtor_id,
                amount_minor=5000,
                currency="EUR",
                method="card",
                provider="manual",
                provider_ref=f"ref-{debtor_id}",
                received_at=at,
            )
        )
    db.flush()
    arm = results.compute(db, experiment, now=utcnow()).arms[1]
    assert (arm.exposed, arm.n, arm.successes) == (5, 4, 1)
    assert arm.amount_minor == {"EUR": 10000}  # in-window money of everyone exposed
    assert nothing not in (paid_in,)


def test_an_arm_that_raises_opt_outs_is_stopped_audited_and_gets_no_more_debtors(
    db: Session,
) -> None:
    experiment = _experiment(db)
    at = utcnow() - timedelta(days=1)
    _expose(db, experiment, 0, at, 20)
    noisy = _expose(db, experiment, 1, at, 20)
    for debtor_id in noisy[:5]:  # 25% opt out vs 0% for control, limit +2 points
        contact = db.scalars(select(Contact).where(Contact.debtor_id == debtor_id)).first()
        assert contact is not None
        contact.opted_out_at = at + timedelta(hours=2)
    db.flush()
    report = service.refresh(db, now=utcnow())
    assert report.stopped_arms == [("discreet-words", 1)]
    assert experiment.arms[1].stopped_at is not None
    assert "opt-out rate 25.0%" in (experiment.arms[1].stop_reason or "")
    assert experiment.weights == [1.0, 0.0]
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "experiment.arm_stopped")
    ).one()
    assert event.details["arm"] == 1
    newcomers = [
        _contact(db, experiment, make_debtor(db, channels=("sms", "whatsapp")).id)
        for _ in range(10)
    ]
    assert {c.arm_index for c in newcomers if c is not None} == {0}
    before = db.scalar(select(func.count()).select_from(ExperimentExposure))
    assert _contact(db, experiment, noisy[0]) is None  # back to the usual wording
    after = db.scalar(select(func.count()).select_from(ExperimentExposure))
    assert after == before  # and no longer exposed


def test_promotion_makes_the_winner_the_wording_in_a_new_audited_version(db: Session) -> None:
    experiment = _experiment(db)
    bundled = active_templates(db)[TEMPLATE]
    version = promotion.promote(db, experiment, 1, actor="user:admin@example.com", now=utcnow())
    row = versioning.active_row(db, WORDING_KIND)
    assert row is not None and row.version == version.version
    # The winner (variant 0) first, the plain variant (the losing arm) gone, voice kept.
    assert row.document[TEMPLATE] == [bundled[0], bundled[2]]
    assert experiment.status == "finished" and experiment.promoted_arm == 1
    assert db.scalars(select(AuditEvent).where(AuditEvent.action == "experiment.promoted")).one()
    with pytest.raises(Conflict):
        promotion.promote(db, experiment, 1, actor="user:admin@example.com", now=utcnow())


def test_a_bad_definition_is_refused_with_every_problem(db: Session) -> None:
    with pytest.raises(BadInput) as caught:
        _experiment(db, arms=[service.ArmSpec("only", 7)], outcome="vibes")
    problems = caught.value.details["problems"]
    assert any("at least two" in p for p in problems)
    assert any("variants 0 to 2" in p for p in problems)
    assert any("outcome" in p for p in problems)
    assert db.scalars(select(Experiment)).first() is None


def test_a_second_experiment_on_the_same_template_cannot_start(db: Session) -> None:
    _experiment(db)
    with pytest.raises(Conflict):
        _experiment(db, key="again")


def test_render_sends_the_variant_named_and_the_usual_pick_for_one_it_lacks(
    settings: Settings,
) -> None:
    from relance.nlg.renderer import render
    from relance.nlg.templates_store import bundled_templates

    templates = bundled_templates()
    for _ in range(5):  # never the random pick: always variant 0
        text = render(templates, TEMPLATE, language="fr", channel="sms", variant_index=0)
        assert IMPORTANT in text
    assert render(templates, TEMPLATE, language="fr", channel="sms", variant_index=99)


def _dispatch_counting(db: Session, engine: Engine, n: int) -> tuple[list[str], Dispatcher]:
    """Plan and dispatch `n` fresh debtors' first reminder; the SQL statements of the dispatch."""
    debtors = [make_debtor(db, channels=("sms", "whatsapp")) for _ in range(n)]
    for debtor in debtors:
        make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    plan(db, debtor_ids=[d.id for d in debtors])
    dispatcher = Dispatcher(
        db_session.get_sessionmaker(),
        gateway=FakeGateway(),
        assistant=FakeAssistant(),
        worker_id="test",
    )
    dispatcher._running_experiments(db)  # the snapshot read once a minute, not per contact
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert dispatcher.run(limit=n) == {"sent": n}
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return statements, dispatcher


@freeze_time(MONDAY_11)
def test_a_contact_in_an_experiment_costs_one_statement_more_and_no_look_up(
    db: Session, engine: Engine
) -> None:
    """bench/experiments: the dispatcher's throughput with an experiment running is bounded
    by what it runs per contact: one INSERT ... SELECT (the exposure, which reads the debtor's
    arm inside it; the first exposure is the assignment), no SELECT before it, no UPDATE after."""
    n = 6
    without, _ = _dispatch_counting(db, engine, n)
    _experiment(db)
    with_experiment, _ = _dispatch_counting(db, engine, n)
    about_experiments = [s for s in with_experiment if "experiment" in s]
    assert len(about_experiments) == n
    assert all(s.startswith("INSERT INTO experiment_exposures") for s in about_experiments)
    assert len(with_experiment) - len(without) <= n
    assert len(db.scalars(select(ExperimentExposure)).all()) == n


@freeze_time(MONDAY_11)
def test_a_failed_send_is_no_exposure_and_the_next_channel_is(db: Session) -> None:
    _experiment(db)
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    plan(db, debtor_ids=[debtor.id])
    gateway = FakeGateway()
    gateway.fail["sms"] = [DeliveryError("unreachable", retryable=False, code="21610")]
    dispatcher = Dispatcher(
        db_session.get_sessionmaker(),
        gateway=gateway,
        assistant=FakeAssistant(error=AssistantUnavailable("down")),
        worker_id="test",
    )
    assert dispatcher.run() == {"sent": 1}
    db.expire_all()
    [exposure] = db.scalars(select(ExperimentExposure)).all()
    [sent] = gateway.sent
    assert exposure.channel == "whatsapp"
    assert _message_of(db, exposure) == sent["message_id"]
    assert (IMPORTANT in sent["body"]) == (exposure.arm_index == 1)


def test_a_reversed_payment_is_no_outcome_and_no_money(db: Session) -> None:
    """A SEPA debit returned (or a dispute lost) inside the window: the debtor did not pay."""
    experiment = _experiment(db)
    t0 = utcnow() - timedelta(days=10)
    paid, returned = _expose(db, experiment, 1, t0, 2)
    make_payment(db, db.get(Debtor, paid), 5000, received_at=t0 + timedelta(days=2))
    make_payment(
        db,
        db.get(Debtor, returned),
        7000,
        received_at=t0 + timedelta(days=2),
        reversed_at=t0 + timedelta(days=4),
    )
    db.flush()
    arm = results.compute(db, experiment, now=utcnow()).arms[1]
    assert (arm.n, arm.successes) == (2, 1)
    assert arm.amount_minor == {"EUR": 5000}


def test_an_arm_that_raises_complaints_is_stopped_audited_and_gets_no_more_debtors(
    db: Session,
) -> None:
    """A complaint is a handoff for a legal matter (harassment...) inside the window."""
    experiment = _experiment(db)
    at = utcnow() - timedelta(days=1)
    calm = _expose(db, experiment, 0, at, 20)
    noisy = _expose(db, experiment, 1, at, 20)
    for debtor_id in noisy[:3]:  # 15% complain vs 0% for control, limit +1 point
        conversation = make_conversation(db, db.get(Debtor, debtor_id))
        make_handoff(db, conversation, reason="legal", created_at=at + timedelta(hours=3))
    # Not complaints: a control debtor's legal handoff before the exposure, a plain request.
    early = make_conversation(db, db.get(Debtor, calm[0]))
    make_handoff(db, early, reason="legal", created_at=at - timedelta(days=2))
    asked = make_conversation(db, db.get(Debtor, calm[1]))
    make_handoff(db, asked, reason="requested", created_at=at + timedelta(hours=1))
    db.flush()
    report = service.refresh(db, now=utcnow())
    assert report.stopped_arms == [("discreet-words", 1)]
    assert "complaint rate 15.0% vs control 0.0%" in (experiment.arms[1].stop_reason or "")
    assert experiment.weights == [1.0, 0.0]
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "experiment.arm_stopped")
    ).one()
    assert event.details["arm"] == 1 and "complaint" in event.details["reason"]
    newcomers = [
        _contact(db, experiment, make_debtor(db, channels=("sms", "whatsapp")).id)
        for _ in range(10)
    ]
    assert {c.arm_index for c in newcomers if c is not None} == {0}
    assert _contact(db, experiment, noisy[0]) is None


def _outcome_of(db: Session, outcome: str) -> tuple[Experiment, list[int], object]:
    """Three debtors of arm 1 exposed ten days ago, in a seven-day window."""
    experiment = _experiment(db, outcome=outcome)
    t0 = utcnow() - timedelta(days=10)
    return experiment, _expose(db, experiment, 1, t0, 4), t0


def _successes(db: Session, experiment: Experiment) -> tuple[int, int]:
    db.flush()
    arm = results.compute(db, experiment, now=utcnow()).arms[1]
    return arm.n, arm.successes


def test_paid_in_full_counts_every_invoice_of_the_contact_paid_inside_the_window(
    db: Session,
) -> None:
    experiment, (full, partly, late, early), t0 = _outcome_of(db, "paid_full")
    paid = {"status": "paid"}
    for debtor_id, paid_ats in (
        (full, [t0 + timedelta(days=2), t0 + timedelta(days=6)]),
        (partly, [t0 + timedelta(days=2), None]),  # one invoice still open
        (late, [t0 + timedelta(days=8)]),
        (early, [t0 - timedelta(days=1)]),
    ):
        debtor = db.get(Debtor, debtor_id)
        invoices = [
            make_invoice(db, debtor, **(paid | {"paid_at": at} if at else {})) for at in paid_ats
        ]
        exposure = db.scalars(
            select(ExperimentExposure).where(ExperimentExposure.debtor_id == debtor_id)
        ).one()
        exposure.invoice_ids = [i.id for i in invoices]
    assert _successes(db, experiment) == (4, 1)


def test_a_promise_counts_only_when_made_inside_the_window(db: Session) -> None:
    experiment, (inside, late, early, _none), t0 = _outcome_of(db, "promise")
    for debtor_id, at in (
        (inside, t0 + timedelta(days=3)),
        (late, t0 + timedelta(days=8)),
        (early, t0 - timedelta(days=1)),
    ):
        make_promise(db, db.get(Debtor, debtor_id), created_at=at)
    # A payment is no promise.
    make_payment(db, db.get(Debtor, _none), 5000, received_at=t0 + timedelta(days=1))
    assert _successes(db, experiment) == (4, 1)


def test_a_reply_counts_only_a_debtors_message_inside_the_window(db: Session) -> None:
    experiment, (inside, late, early, ours), t0 = _outcome_of(db, "reply")
    for debtor_id, at, direction in (
        (inside, t0 + timedelta(days=3), Direction.INBOUND),
        (late, t0 + timedelta(days=8), Direction.INBOUND),
        (early, t0 - timedelta(days=1), Direction.INBOUND),
        (ours, t0 + timedelta(days=1), Direction.OUTBOUND),  # the bot's message is no reply
    ):
        conversation = make_conversation(db, db.get(Debtor, debtor_id))
        make_message(db, conversation, direction=direction, created_at=at)
    assert _successes(db, experiment) == (4, 1)
