"""A plan chosen on the portal equals the plan the assistant would accept for the same request.

Across many requests (amounts in every band of the bundled policy and of a stricter one, counts
from 2 to 60, every frequency) the same debt is put to the assistant's own actions
(`action_evaluate_plan`, then `action_create_plan` on a yes or `action_request_plan_approval`
on a no, as the stories run them) and to the portal (its evaluation, then the form its plan page
renders for the answer, posted to its service), each on a debtor of its own with the same
invoices. Compared field by field: the answer (within the limits, a counter-offer, a collector's
approval), the plan requested and the plan offered, then the plan each one writes, its schedule,
and the approval task and handoff of a plan above the limits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from html import unescape
from typing import Any

import pytest
from freezegun import freeze_time
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.plans import ActionCreatePlan, ActionEvaluatePlan, ActionRequestPlanApproval
from portal.pages import render_page
from relance.db.models import Debtor, Handoff, PaymentPlan, Task
from relance.plans import service as plans
from relance.plans.service import PERIOD_DAYS
from relance.policy.service import plan_limits_for, save_version, seed_document
from relance.portal import service
from tests.actions.conftest import make_tracker
from tests.factories import make_conversation, make_debtor, make_invoice

# A 31st: monthly schedules are clamped to shorter months, on both sides alike.
NOW = "2027-01-31 10:00:00"
TODAY = date(2027, 1, 31)
COUNTS = (2, 3, 4, 6, 7, 12, 13, 24, 60)

# Edges the bundled policy does not have: a fixed first-payment floor, a duration shorter than
# the count allows (monthly stops at 3, weekly at 9), frequencies left out, small amounts that
# no plan fits (a collector decides).
STRICT_BANDS = [
    {
        "segment": "consumer",
        "max_amount_minor": 100_000,
        "max_installments": 6,
        "max_duration_days": 60,
        "min_first_payment_minor": 15_000,
        "min_installment_minor": 2_500,
        "allowed_frequencies": ["weekly", "monthly"],
    },
    {
        "segment": "consumer",
        "max_amount_minor": None,
        "max_installments": 4,
        "max_duration_days": 120,
        "min_first_payment_pct": 40,
        "min_first_payment_minor": 50_000,
        "min_installment_minor": 10_000,
        "allowed_frequencies": ["biweekly"],
    },
    {
        "segment": "b2b",
        "max_amount_minor": None,
        "max_installments": 2,
        "max_duration_days": 30,
        "min_first_payment_pct": 50,
        "min_installment_minor": 100_000,
        "allowed_frequencies": ["monthly"],
    },
]

# (policy, segment, the open invoices): each band of each policy, at and around its bounds.
DEBTS = [
    ("seed", "consumer", (4_000,)),  # 2 x 20 EUR is the minimum instalment: 3 is too many
    ("seed", "consumer", (3_000,)),  # even 2 instalments are below the minimum: approval
    ("seed", "consumer", (30_000, 19_999)),  # the last cent below the first band's bound
    ("seed", "consumer", (50_000,)),  # the first amount of the second band (10 % first)
    ("seed", "consumer", (499_999,)),
    ("seed", "consumer", (600_000,)),  # third band: 20 % first, monthly only, up to 12
    ("seed", "consumer", (2_000_000, 1_000_001)),
    ("seed", "b2b", (30_000,)),  # 25 % first, 100 EUR instalments at least
    ("seed", "b2b", (250_000, 250_000)),  # the second b2b band: 30 %, 500 EUR instalments
    ("seed", "b2b", (120_000,)),
    ("strict", "consumer", (3_000,)),  # the fixed 150 EUR first payment is more than owed
    ("strict", "consumer", (40_000,)),
    ("strict", "consumer", (99_999,)),
    ("strict", "consumer", (100_000,)),  # 40 % or 500 EUR first, biweekly only
    ("strict", "consumer", (1_000_000,)),
    ("strict", "b2b", (150_000,)),  # 2 instalments of 750 EUR are below 1,000 EUR: approval
    ("strict", "b2b", (400_000,)),
]


@dataclass
class Side:
    """One debtor with the debt: `assistant` talks to the bot, `portal` uses the portal."""

    debtor: Debtor
    conversation_id: int


def _debtor(db: Session, segment: str, amounts: tuple[int, ...]) -> Side:
    debtor = make_debtor(db, segment=segment, postcode="75011", timezone="Europe/Paris")
    for amount in amounts:
        make_invoice(db, debtor, amount_minor=amount, due=date(2026, 12, 15))
    conversation = make_conversation(db, debtor)
    db.flush()
    return Side(debtor, conversation.id)


def _slots(side: Side, **extra: Any) -> dict[str, Any]:
    return {
        "debtor_id": str(side.debtor.id),
        "conversation_id": str(side.conversation_id),
        **extra,
    }


def _slot(events: list[dict[str, Any]], name: str) -> Any:
    return next(e["value"] for e in reversed(events) if e.get("name") == name)


def _assistant_evaluates(side: Side, installments: int, frequency: str) -> dict[str, Any]:
    tracker = make_tracker(_slots(side, plan_installments=installments, plan_frequency=frequency))
    events = ActionEvaluatePlan().run(CollectingDispatcher(), tracker, {})
    return {name: _slot(events, name) for name in ("plan_status", "plan_request")} | {
        "plan_proposal": next(
            (e["value"] for e in events if e.get("name") == "plan_proposal"), None
        )
    }


def _assistant_answers(side: Side, evaluated: dict[str, Any], *, yes: bool) -> None:
    """The debtor's yes to the plan offered (`action_create_plan`), or their no to a
    counter-offer and any answer to a plan needing approval (`action_request_plan_approval`)."""
    if yes:
        tracker = make_tracker(_slots(side, plan_proposal=evaluated["plan_proposal"]))
        assert _slot(
            ActionCreatePlan().run(CollectingDispatcher(), tracker, {}), "plan_status"
        ) == ("created")
        return
    tracker = make_tracker(
        _slots(side, plan_status=evaluated["plan_status"], plan_request=evaluated["plan_request"])
    )
    events = ActionRequestPlanApproval().run(CollectingDispatcher(), tracker, {})
    assert _slot(events, "plan_status") == "pending_approval"


FORM = re.compile(r'<form method="post" action="/portal/t/plan/(\w+)">(.*?)</form>', re.S)
FIELD = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)">')


def _portal_forms(evaluation: plans.Evaluation) -> dict[str, dict[str, str]]:
    """The forms the portal's plan page shows for this answer: action -> the fields it posts."""
    page = render_page(
        "plan.html",
        "fr",
        base_path="/portal/t",
        signed_in=True,
        csrf="c",
        options=[],
        frequencies=list(PERIOD_DAYS),
        evaluation=evaluation,
        plan_in_place=False,
    )
    forms = {}
    for action, body in FORM.findall(page):
        fields = {name: unescape(value) for name, value in FIELD.findall(body)}
        fields.pop("csrf_token")
        if action != "evaluate":
            forms[action] = fields
    return forms


def _portal_posts(db: Session, side: Side, action: str, fields: dict[str, str]) -> None:
    """What the portal's route does with the form (portal/endpoints.py `plan_post`)."""
    act = service.accept_plan if action == "accept" else service.ask_plan_approval
    first = fields.get("first_amount")
    act(
        db,
        side.debtor,
        installments=int(fields["installments"]),
        frequency=fields["frequency"],
        first_minor=int(first) if first else None,
        today=TODAY,
    )


def _written(db: Session, side: Side) -> dict[str, Any]:
    """The plan written for the debtor, its schedule, and the collector's work it made."""
    db.expire_all()
    plan = db.scalars(select(PaymentPlan).where(PaymentPlan.debtor_id == side.debtor.id)).one()
    tasks = db.scalars(select(Task).where(Task.debtor_id == side.debtor.id)).all()
    handoffs = db.scalars(
        select(Handoff).where(Handoff.conversation_id == side.conversation_id)
    ).all()
    return {
        "status": plan.status,
        "approved_by": plan.approved_by,
        "note": plan.note,
        "total_minor": plan.total_minor,
        "currency": plan.currency,
        "installments_count": plan.installments_count,
        "frequency": plan.frequency,
        "invoices": len(plan.invoice_ids),
        "schedule": [(i.seq, i.due_date, i.amount_minor, i.status) for i in plan.installments],
        "tasks": [(t.kind, (t.details or {}).get("reason")) for t in tasks],
        "handoffs": [(h.reason, h.details) for h in handoffs],
    }


def _use_policy(db: Session, name: str) -> None:
    if name == "strict":
        save_version(db, {**seed_document(), "plan_limits": STRICT_BANDS}, actor="test")


@freeze_time(NOW)
@pytest.mark.parametrize(("policy", "segment", "amounts"), DEBTS)
def test_the_portal_answers_and_writes_what_the_assistant_does(
    db: Session, policy: str, segment: str, amounts: tuple[int, ...]
) -> None:
    _use_policy(db, policy)
    for frequency in PERIOD_DAYS:
        for count in COUNTS:
            request = f"{count} {frequency}"
            assistant, portal = _debtor(db, segment, amounts), _debtor(db, segment, amounts)

            said = _assistant_evaluates(assistant, count, frequency)
            evaluation = service.evaluate_plan(
                db, portal.debtor, installments=count, frequency=frequency, today=TODAY
            )
            assert evaluation.status == said["plan_status"], request
            assert evaluation.requested is not None
            assert evaluation.requested.as_dict() == said["plan_request"], request
            offered = evaluation.proposal.as_dict() if evaluation.proposal else None
            assert offered == said["plan_proposal"], request

            forms = _portal_forms(evaluation)
            if evaluation.status == "needs_approval":
                assert set(forms) == {"approval"}, request
                _assistant_answers(assistant, said, yes=False)
                _portal_posts(db, portal, "approval", forms["approval"])
                assert _written(db, portal) == _written(db, assistant), request
                continue
            # Within the limits or a counter-offer: yes to the plan offered...
            _assistant_answers(assistant, said, yes=True)
            _portal_posts(db, portal, "accept", forms["accept"])
            assert _written(db, portal) == _written(db, assistant), request
            if evaluation.status == "counter_offer":
                # ...or, to a counter-offer, no: the request goes to a collector.
                assert set(forms) == {"accept", "approval"}, request
                assistant, portal = _debtor(db, segment, amounts), _debtor(db, segment, amounts)
                said = _assistant_evaluates(assistant, count, frequency)
                _assistant_answers(assistant, said, yes=False)
                _portal_posts(db, portal, "approval", forms["approval"])
                assert _written(db, portal) == _written(db, assistant), request


@freeze_time(NOW)
@pytest.mark.parametrize(("policy", "segment", "amounts"), DEBTS)
def test_every_plan_offered_on_the_portal_is_one_the_assistant_accepts_as_is(
    db: Session, policy: str, segment: str, amounts: tuple[int, ...]
) -> None:
    _use_policy(db, policy)
    portal = _debtor(db, segment, amounts)
    options = service.plan_options(db, portal.debtor, TODAY)
    limits = plan_limits_for(db, portal.debtor, sum(amounts))
    for option in options:
        assistant = _debtor(db, segment, amounts)
        said = _assistant_evaluates(assistant, option.installments, option.frequency)
        assert said["plan_status"] == "within_limits"
        assert said["plan_proposal"] == option.as_dict()
        assert option.installments <= limits.max_installments
        assert option.frequency in limits.allowed_frequencies


def test_the_matrix_reaches_every_answer(db: Session) -> None:
    """The requests above are not all of one kind: some fit, some get a counter-offer raising
    the first payment or lowering the count or changing the frequency, some need a collector."""
    kinds: set[str] = set()
    for policy, segment, amounts in DEBTS:
        with db.begin_nested() as nested:
            _use_policy(db, policy)
            side = _debtor(db, segment, amounts)
            for frequency in PERIOD_DAYS:
                for count in COUNTS:
                    evaluation = service.evaluate_plan(
                        db, side.debtor, installments=count, frequency=frequency, today=TODAY
                    )
                    kinds.add(evaluation.status)
                    proposal, requested = evaluation.proposal, evaluation.requested
                    if evaluation.status != "counter_offer" or not proposal or not requested:
                        continue
                    if proposal.amounts != plans.split(proposal.total_minor, proposal.installments):
                        kinds.add("counter_raises_the_first_payment")
                    if proposal.installments < requested.installments:
                        kinds.add("counter_lowers_the_count")
                    if proposal.frequency != requested.frequency:
                        kinds.add("counter_changes_the_frequency")
            nested.rollback()
    assert kinds == {
        "within_limits",
        "counter_offer",
        "needs_approval",
        "counter_raises_the_first_payment",
        "counter_lowers_the_count",
        "counter_changes_the_frequency",
    }
