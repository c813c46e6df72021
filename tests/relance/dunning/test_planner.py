"""Planner, with a frozen clock: each stage, each skip reason, grouping, priority, idempotency."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.conversations.repository import conversation_for_debtor
from relance.db.base import utcnow
from relance.db.models import (
    Dispute,
    DunningAction,
    DunningRun,
    DunningSkip,
    Handoff,
    PaymentPlan,
    Promise,
)
from relance.dunning.planner import plan
from tests.factories import make_debtor, make_invoice

NOW = "2026-11-23 08:00:00"  # Monday


def _actions(db: Session, debtor_id: int) -> list[DunningAction]:
    return list(
        db.scalars(
            select(DunningAction)
            .where(DunningAction.debtor_id == debtor_id)
            .order_by(DunningAction.id)
        )
    )


@freeze_time(NOW)
@pytest.mark.parametrize(
    ("days_from_due", "segment", "stage", "kind", "channels"),
    [
        (-10, "consumer", "pre_due", "contact", ["sms", "whatsapp"]),
        (-10, "b2b", "pre_due", "contact", ["whatsapp", "sms"]),
        (3, "consumer", "friendly", "contact", ["sms", "whatsapp"]),
        (10, "consumer", "firm", "contact", ["sms", "whatsapp"]),
        (20, "consumer", "call", "contact", ["voice", "sms"]),
        (30, "consumer", "formal_notice", "letter", ["letter"]),
        (45, "b2b", "legal", "legal", []),
    ],
)
def test_each_stage_is_planned_on_its_day(
    db: Session, days_from_due: int, segment: str, stage: str, kind: str, channels: list[str]
) -> None:
    debtor = make_debtor(db, segment=segment, channels=("sms", "whatsapp", "voice"))
    invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=days_from_due))
    report = plan(db, debtor_ids=[debtor.id])
    [action] = _actions(db, debtor.id)
    assert (action.invoice_id, action.stage, action.kind) == (invoice.id, stage, kind)
    assert action.channels == channels and action.status == "planned"
    assert report.counts[f"stage:{stage}"] == 1


@freeze_time(NOW)
@pytest.mark.parametrize("days_from_due", [-11, 2])
def test_nothing_between_stages(db: Session, days_from_due: int) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=days_from_due))
    report = plan(db, debtor_ids=[debtor.id])
    assert _actions(db, debtor.id) == [] and report.counts["groups"] == 0


@freeze_time(NOW)
def test_high_risk_b2b_track_is_earlier(db: Session) -> None:
    debtor = make_debtor(db, segment="b2b", risk_class="high", channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=7))
    plan(db, debtor_ids=[debtor.id])
    assert [a.stage for a in _actions(db, debtor.id)] == ["firm"]


def _skip_case(db: Session, reason: str):  # type: ignore[no-untyped-def]
    today = utcnow().date()
    no_address = {"address_line": None, "postcode": None, "city": None}
    debtor = make_debtor(
        db,
        channels=() if reason == "no_contact" else ("sms", "whatsapp"),
        **(no_address if reason == "no_postal_address" else {}),
    )
    due = today - timedelta(days=30 if reason == "no_postal_address" else 10)
    invoice = make_invoice(db, debtor, due=due)
    if reason == "paid":
        invoice.paid_minor = invoice.amount_minor
    elif reason == "disputed":
        db.add(
            Dispute(
                reference=f"D-{invoice.id}",
                debtor_id=debtor.id,
                invoice_id=invoice.id,
                reason="amount",
            )
        )
    elif reason == "paused":
        invoice.dunning_paused_until = today + timedelta(days=3)
    elif reason == "promised":
        db.add(
            Promise(
                debtor_id=debtor.id,
                amount_minor=invoice.amount_minor,
                currency="EUR",
                promised_date=today + timedelta(days=5),
                invoice_ids=[invoice.id],
            )
        )
    elif reason == "on_plan":
        db.add(
            PaymentPlan(
                debtor_id=debtor.id,
                total_minor=invoice.amount_minor,
                currency="EUR",
                installments_count=3,
                frequency="monthly",
                invoice_ids=[invoice.id],
            )
        )
    elif reason == "handed_off":
        conversation = conversation_for_debtor(db, debtor)
        db.add(Handoff(conversation_id=conversation.id, reason="requested"))
    elif reason == "opted_out":
        for contact in debtor.contacts:
            contact.opted_out_at = utcnow() - timedelta(days=1)
    db.flush()
    return debtor, invoice


@freeze_time(NOW)
@pytest.mark.parametrize(
    "reason",
    [
        "paid",
        "disputed",
        "paused",
        "promised",
        "on_plan",
        "handed_off",
        "opted_out",
        "no_contact",
        "no_postal_address",
    ],
)
def test_each_skip_reason_is_recorded(db: Session, reason: str) -> None:
    debtor, invoice = _skip_case(db, reason)
    report = plan(db, debtor_ids=[debtor.id])
    assert _actions(db, debtor.id) == []
    [skip] = db.scalars(select(DunningSkip).where(DunningSkip.run_id == report.run_id)).all()
    assert (skip.invoice_id, skip.reason) == (invoice.id, reason)
    assert skip.detail
    run = db.get(DunningRun, report.run_id)
    assert run is not None and run.counts[f"skip:{reason}"] == 1


@freeze_time(NOW)
def test_expired_promise_no_longer_pauses(db: Session) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=10))
    db.add(
        Promise(
            debtor_id=debtor.id,
            amount_minor=1,
            currency="EUR",
            promised_date=utcnow().date() - timedelta(days=1),
            invoice_ids=[invoice.id],
        )
    )
    plan(db, debtor_ids=[debtor.id])
    assert [a.stage for a in _actions(db, debtor.id)] == ["firm"]


@freeze_time(NOW)
def test_one_opted_out_channel_is_recorded_and_the_other_used(db: Session) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    next(c for c in debtor.contacts if c.channel == "sms").opted_out_at = utcnow()
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    report = plan(db, debtor_ids=[debtor.id])
    [action] = _actions(db, debtor.id)
    assert action.channels == ["whatsapp"]
    [skip] = db.scalars(select(DunningSkip).where(DunningSkip.run_id == report.run_id)).all()
    assert skip.reason == "channel_opted_out" and "sms" in (skip.detail or "")


@freeze_time(NOW)
def test_invoices_of_one_debtor_share_one_contact_led_by_the_latest_stage(db: Session) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp", "voice"))
    today = utcnow().date()
    a = make_invoice(db, debtor, due=today - timedelta(days=3))
    b = make_invoice(db, debtor, due=today - timedelta(days=20))
    report = plan(db, debtor_ids=[debtor.id])
    actions = _actions(db, debtor.id)
    assert {(x.invoice_id, x.stage) for x in actions} == {(a.id, "friendly"), (b.id, "call")}
    assert len({x.group_key for x in actions}) == 1
    [group] = report.groups
    assert group.lead_stage.key == "call" and group.channels == ["voice", "sms"]
    assert sorted(group.invoice_numbers) == sorted([a.number, b.number])


@freeze_time(NOW)
def test_priority_orders_debtors(db: Session) -> None:
    today = utcnow().date()
    small = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, small, due=today - timedelta(days=3), amount_minor=5000)
    big_risky = make_debtor(db, risk_class="high", channels=("sms", "whatsapp"))
    make_invoice(db, big_risky, due=today - timedelta(days=10), amount_minor=900000)
    broken = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, broken, due=today - timedelta(days=3), amount_minor=5000)
    db.add(
        Promise(
            debtor_id=broken.id,
            amount_minor=5000,
            currency="EUR",
            promised_date=today - timedelta(days=5),
            status="broken",
        )
    )
    db.flush()
    report = plan(db, debtor_ids=[small.id, big_risky.id, broken.id])
    order = [g.debtor_id for g in report.groups]
    assert order == [big_risky.id, broken.id, small.id]
    assert report.groups[0].priority > report.groups[1].priority > report.groups[2].priority


@freeze_time(NOW)
def test_planning_twice_plans_nothing_twice(db: Session) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    plan(db, debtor_ids=[debtor.id])
    second = plan(db, debtor_ids=[debtor.id])
    assert len(_actions(db, debtor.id)) == 1
    assert second.counts["groups"] == 0 and second.counts["stage:friendly"] == 0


def test_unsent_stage_is_superseded_by_the_next_one(db: Session) -> None:
    with freeze_time("2026-11-16 08:00:00"):
        debtor = make_debtor(db, channels=("sms", "whatsapp"))
        make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
        plan(db, debtor_ids=[debtor.id])
    with freeze_time("2026-11-23 08:00:00"):
        plan(db, debtor_ids=[debtor.id])
    db.expire_all()
    friendly, firm = _actions(db, debtor.id)
    assert (friendly.stage, friendly.status, friendly.outcome) == (
        "friendly",
        "cancelled",
        "superseded",
    )
    assert (firm.stage, firm.status) == ("firm", "planned")


@freeze_time(NOW)
def test_stage_cancelled_for_a_dispute_is_planned_again_once_resolved(db: Session) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=10))
    plan(db, debtor_ids=[debtor.id])
    [action] = _actions(db, debtor.id)
    action.status, action.outcome = "cancelled", "disputed"  # as the dispatcher would
    db.flush()
    plan(db, debtor_ids=[debtor.id])
    db.expire_all()
    old, new = _actions(db, debtor.id)
    assert old.idempotency_key.startswith(f"{action.invoice_id}:firm:retired:")
    assert (new.stage, new.status, new.idempotency_key) == (
        "firm",
        "planned",
        f"{action.invoice_id}:firm",
    )


@freeze_time(NOW)
def test_dry_run_writes_nothing(db: Session) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    report = plan(db, debtor_ids=[debtor.id], dry_run=True)
    assert report.run_id is None and report.counts["groups"] == 1
    assert _actions(db, debtor.id) == []


@freeze_time(NOW)
def test_chunks_cover_every_debtor(db: Session) -> None:
    debtors = [make_debtor(db, channels=("sms", "whatsapp")) for _ in range(5)]
    for debtor in debtors:
        make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    seen: list[int] = []
    report = plan(db, debtor_ids=[d.id for d in debtors], chunk_size=2, progress=seen.append)
    assert report.counts["groups"] == 5 and sum(seen) == 5 and len(seen) == 3


@pytest.mark.parametrize(
    ("segment", "risk"), [("consumer", "standard"), ("b2b", "standard"), ("b2b", "high")]
)
def test_sql_stage_filter_agrees_with_the_python_rules(
    db: Session, segment: str, risk: str
) -> None:
    """Every day from J-15 to J+60: the SQL filter keeps exactly the invoices with a stage."""
    from relance.db.models import Invoice
    from relance.dunning.planner import _stage_filter, current_stage
    from relance.policy.service import seed_policy

    policy = seed_policy()
    with freeze_time(NOW):
        debtor = make_debtor(db, segment=segment, risk_class=risk, channels=("sms", "whatsapp"))
        invoices = {
            make_invoice(db, debtor, due=utcnow().date() - timedelta(days=d)).id: d
            for d in range(-15, 61)
        }
        stage_filter = _stage_filter(db, policy, utcnow())
    assert stage_filter is not None
    kept = set(
        db.scalars(
            select(Invoice.id)
            .join(Invoice.debtor)
            .where(Invoice.debtor_id == debtor.id, stage_filter(debtor.id, debtor.id))
        )
    )
    track = policy.track_for(segment, risk)
    expected = {i for i, d in invoices.items() if current_stage(track, d) is not None}
    assert kept == expected and len(expected) > 50


@freeze_time(NOW)
def test_debtors_of_one_chunk_each_get_their_own_channels(db: Session) -> None:
    """Channel choices are shared between debtors whose contacts look alike, never otherwise."""
    today = utcnow().date()
    both = make_debtor(db, channels=("sms", "whatsapp"))
    opted = make_debtor(db, channels=("sms", "whatsapp"))
    next(c for c in opted.contacts if c.channel == "sms").opted_out_at = utcnow()
    nobody = make_debtor(db, channels=())
    alike = make_debtor(db, channels=("sms", "whatsapp"))
    for debtor in (both, opted, nobody, alike):
        make_invoice(db, debtor, due=today - timedelta(days=3))
    report = plan(db, debtor_ids=[both.id, opted.id, nobody.id, alike.id])
    channels = {a.debtor_id: a.channels for d in (both, opted, alike) for a in _actions(db, d.id)}
    assert channels == {
        both.id: ["sms", "whatsapp"],
        opted.id: ["whatsapp"],
        alike.id: ["sms", "whatsapp"],
    }
    assert report.counts["skip:no_contact"] == 1 and report.counts["channel_opted_out"] == 1
