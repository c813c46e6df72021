"""An instalment an open dispute holds (`relance/plans/holds.py`) is not asked for: the
assistant never names it as the next one to pay nor sends a link for it. The next instalment
no dispute holds is named instead, or none when every one left is held.

The first instalment is held here by a refund's dispute (the creditor gave its money back and a
collector has to decide whether it is still owed); a debtor's dispute on the account holds them
all."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.balance import ActionGiveBalance, ActionGiveDebtDetails
from actions.off_topic import ActionOutOfScope
from actions.payments import ActionSendPaymentLink
from relance.db.models import Dispute, Invoice, PaymentLink, PaymentPlan
from relance.disputes.service import REFUNDED, create_dispute, decide_dispute
from relance.plans import holds
from relance.plans import repository as plans_repository
from tests.actions.conftest import make_tracker, slots_for
from tests.factories import make_plan

FIRST_DUE = date.today() + timedelta(days=5)
SECOND_DUE = FIRST_DUE + timedelta(days=30)


def _invoices(db: Session, owner) -> list[Invoice]:
    return list(db.scalars(select(Invoice).where(Invoice.debtor_id == owner.id)))


def _plan_with_first_held(db: Session, owner) -> PaymentPlan:
    """A plan of 100 € then 200 € over the debtor's invoices; a refund's dispute holds the
    first instalment."""
    invoices = _invoices(db, owner)
    plan = make_plan(db, owner, (10_000, 20_000), first_due=FIRST_DUE, invoices=invoices)
    dispute = create_dispute(
        db, owner, reason=REFUNDED, details="re_test", invoice_id=invoices[0].id, actor="stripe"
    )
    holds.hold(db, plan.installments[0], dispute, amount_minor=10_000, actor="stripe")
    db.flush()
    return plan


def test_the_next_instalment_is_the_first_one_no_dispute_holds(db: Session, debtor_setup) -> None:
    owner, _ = debtor_setup
    plan = _plan_with_first_held(db, owner)
    assert plans_repository.next_installment(db, owner.id) == plan.installments[1]


def test_the_balance_names_the_next_unheld_instalment(
    db: Session, dispatcher, debtor_setup
) -> None:
    owner, conv = debtor_setup
    _plan_with_first_held(db, owner)
    ActionGiveBalance().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    [message] = dispatcher.messages
    assert message["next_installment_minor"] == 20_000
    assert message["next_installment_date"] == SECOND_DUE.isoformat()


def test_the_invoice_details_name_the_next_unheld_instalment(
    db: Session, dispatcher, debtor_setup
) -> None:
    owner, conv = debtor_setup
    _plan_with_first_held(db, owner)
    ActionGiveDebtDetails().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    [message] = dispatcher.messages
    assert (message["next_installment_minor"], message["next_installment_date"]) == (
        20_000,
        SECOND_DUE.isoformat(),
    )


def test_the_off_topic_reply_names_the_next_unheld_instalment(
    db: Session, dispatcher, debtor_setup
) -> None:
    owner, conv = debtor_setup
    _plan_with_first_held(db, owner)
    tracker = make_tracker(slots_for(owner, conv), text="et après ?", intent="out_of_scope")
    ActionOutOfScope().run(dispatcher, tracker, {})
    [message] = dispatcher.messages
    assert (message["next_installment_minor"], message["next_installment_date"]) == (
        20_000,
        SECOND_DUE.isoformat(),
    )


def test_the_payment_link_is_for_the_next_unheld_instalment(
    db: Session, dispatcher, debtor_setup
) -> None:
    owner, conv = debtor_setup
    plan = _plan_with_first_held(db, owner)
    ActionSendPaymentLink().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    [message] = dispatcher.messages
    assert (message["amount_minor"], message["installment_date"]) == (
        20_000,
        SECOND_DUE.isoformat(),
    )
    link = db.scalars(select(PaymentLink).where(PaymentLink.debtor_id == owner.id)).one()
    assert (link.purpose, link.installment_id) == ("installment", plan.installments[1].id)


def test_a_plan_held_whole_names_no_instalment_and_links_none(
    db: Session, dispatcher, debtor_setup
) -> None:
    """The debtor disputes without saying which of their two invoices: the dispute is on the
    account and holds every instalment of the plan."""
    owner, conv = debtor_setup
    plan = make_plan(
        db, owner, (10_000, 20_000), first_due=FIRST_DUE, invoices=_invoices(db, owner)
    )
    dispute = create_dispute(db, owner, reason="other", details="je conteste", actor="debtor")
    assert [inst.hold_id for inst in plan.installments] == [dispute.id, dispute.id]
    db.flush()

    assert plans_repository.next_installment(db, owner.id) is None
    ActionOutOfScope().run(
        dispatcher, make_tracker(slots_for(owner, conv), intent="out_of_scope"), {}
    )
    ActionSendPaymentLink().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    said, link_message = dispatcher.messages
    assert said.get("next_installment_minor") is None
    assert link_message.get("installment_date") is None
    links = db.scalars(select(PaymentLink).where(PaymentLink.debtor_id == owner.id)).all()
    assert all(link.installment_id is None for link in links)


def test_an_instalment_a_decided_dispute_held_is_next_again(db: Session, debtor_setup) -> None:
    """Rejected (still owed), the refund's hold is over: the first instalment is next again."""
    owner, _ = debtor_setup
    plan = _plan_with_first_held(db, owner)
    dispute = db.get(Dispute, plan.installments[0].hold_id)
    decide_dispute(db, dispute, upheld=False, note="still owed", actor="collector:ann")
    assert plans_repository.next_installment(db, owner.id) == plan.installments[0]
