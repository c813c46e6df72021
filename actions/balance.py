"""Balance, invoice details, invoice copy and fees (only ever reached after the identity check)."""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.orm import Session

from actions._common import (
    debtor_of,
    latest_text,
    next_installment_variables,
    today,
    unit_of_work,
    utter,
)
from actions.late_reasons import record_request_reason
from actions.payments import UNKNOWN, forgot_the_date
from actions.plan_pending import ask_again, awaiting_plan_answer
from relance.db.models import Debtor, Task
from relance.db.models.enums import Segment
from relance.letters.amounts import compute_claim
from relance.plans import repository as plans_repository
from relance.policy.service import active_policy


def _verified(tracker: Tracker) -> bool:
    return bool(tracker.get_slot("identity_verified"))


def _nothing_open(
    session: Session, dispatcher: CollectingDispatcher, debtor: Debtor | None
) -> None:
    """No open invoice: "nothing left to pay", unless some are under dispute. Seen in the
    simulator: right after registering a dispute, "how much again" got "Good news: there is
    nothing left to pay on your account", about an invoice still owed if the dispute fails.
    Invoices still to fall due (an instalment still to come, an ordinary invoice due next month)
    are said as the next one's date."""
    upcoming = (
        plans_repository.falling_due_later(session, debtor.id, today(debtor)) if debtor else []
    )
    if upcoming:  # owed later, neither nothing nor now
        utter(
            dispatcher,
            "utter_balance_not_yet_due",
            invoice_refs=[upcoming[0].number],
            amount_minor=upcoming[0].balance_minor,
            currency=upcoming[0].currency,
            due_date=upcoming[0].due_date.isoformat(),
            instalment=upcoming[0].instalment_of is not None,
        )
        return
    disputed = plans_repository.disputed_invoices(session, debtor.id) if debtor else []
    if not disputed:
        utter(dispatcher, "utter_no_balance")
        return
    utter(
        dispatcher,
        "utter_balance_disputed",
        invoice_refs=[i.number for i in disputed],
        balance_minor=sum(i.balance_minor for i in disputed),
        currency=disputed[0].currency,
    )


class ActionGiveBalance(Action):
    def name(self) -> str:
        return "action_give_balance"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if _forgot_the_paid_date(tracker):
            # "i don't remember" to "on what date did you pay?" is read as ask_balance (0.94 on
            # the CI model); the question the bot asked wins: the report goes on without a date.
            return [SlotSet("paid_date", UNKNOWN)]
        if not _verified(tracker):
            return []
        with unit_of_work() as session:
            debtor = debtor_of(session, tracker)
            if debtor is None:
                _nothing_open(session, dispatcher, debtor)
                return []
            now = today(debtor)
            # The amount due now counts the invoices whose date has come; an ordinary invoice
            # due next month is said apart, with its date ("combien je dois ?" answered 600 €
            # for 100 € overdue and 500 € due in a month).
            invoices = [
                i
                for i in plans_repository.open_invoices(session, debtor.id, today=now)
                if i.due_date <= now
            ]
            if not invoices:
                _nothing_open(session, dispatcher, debtor)
                return []
            plan = next_installment_variables(session, debtor.id)
            # Said apart: what falls due later, from its own date. Not with a plan running: the
            # plan spread those invoices too, and its next installment is what is paid next.
            later = (
                []
                if plan["next_installment_minor"]
                else plans_repository.falling_due_later(session, debtor.id, now)
            )
            # With a plan running, what matters is the next installment, not the whole balance.
            utter(
                dispatcher,
                "utter_balance",
                balance_minor=sum(i.balance_minor for i in invoices),
                currency=invoices[0].currency,
                invoice_count=len(invoices),
                oldest_due_date=invoices[0].due_date.isoformat(),
                later_minor=sum(i.balance_minor for i in later),
                later_count=len(later),
                later_due_date=later[0].due_date.isoformat() if later else None,
                # a form or a plan proposal asks its own question next: no "would you like a
                # payment link?" too
                form_active=bool(tracker.active_loop_name) or awaiting_plan_answer(tracker),
                **plan,
            )
        return ask_again(tracker)


class ActionGiveDebtDetails(Action):
    def name(self) -> str:
        return "action_give_debt_details"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if not _verified(tracker):
            return []
        with unit_of_work() as session:
            debtor = debtor_of(session, tracker)
            invoices = plans_repository.open_invoices(session, debtor.id) if debtor else []
            if not invoices:
                _nothing_open(session, dispatcher, debtor)
                return []
            now = today(debtor)
            utter(
                dispatcher,
                "utter_debt_details",
                currency=invoices[0].currency,
                **next_installment_variables(session, invoices[0].debtor_id),
                invoices=[
                    {
                        "number": i.number,
                        "amount_minor": i.balance_minor,
                        "currency": i.currency,
                        "due_date": i.due_date.isoformat(),
                        "days_late": max((now - i.due_date).days, 0),
                    }
                    for i in invoices[:5]
                ],
            )
        return ask_again(tracker)


class ActionSendInvoiceCopy(Action):
    """No document store yet: the request becomes a task for the back office, said honestly."""

    def name(self) -> str:
        return "action_send_invoice_copy"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if not _verified(tracker):
            return []
        with unit_of_work() as session:
            debtor = debtor_of(session, tracker)
            invoices = plans_repository.open_invoices(session, debtor.id) if debtor else []
            if debtor is None:
                return []
            numbers = [i.number for i in invoices]
            record_request_reason(session, tracker, debtor, "request_invoice_copy")
            session.add(
                Task(
                    kind="invoice_copy",
                    debtor_id=debtor.id,
                    details={
                        "invoices": numbers,
                        "channel": tracker.get_slot("channel"),
                        "email": debtor.email,
                    },
                )
            )
            utter(
                dispatcher,
                "utter_invoice_copy_requested",
                # All of them, as the task asks for all: the wording names up to three and
                # counts the rest, so the reply never lists fewer invoices than will be sent.
                invoice_refs=numbers,
                has_email=bool(debtor.email),
            )
        return []


class ActionExplainFees(Action):
    """B2B: late-payment interest (policy rate) and the fixed indemnity (in euros, on invoices in
    euros only: `relance.letters.amounts.fixed_indemnity_minor`); consumers: none added."""

    def name(self) -> str:
        return "action_explain_fees"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if not _verified(tracker):
            return []
        with unit_of_work() as session:
            debtor = debtor_of(session, tracker)
            if debtor is None:
                return []
            invoices = plans_repository.open_invoices(session, debtor.id)
            currency = invoices[0].currency if invoices else "EUR"
            if debtor.segment != Segment.B2B:
                utter(dispatcher, "utter_fees", segment="consumer", fees_minor=0, currency=currency)
                return []
            # The letters' own computation (relance.letters.amounts): interest in the invoices'
            # currency; the fixed indemnity once per late invoice (its instalments owe it once),
            # in euros and on invoices in euros only (D441-5 gives 40 euros, not 40 dollars).
            claim = compute_claim(
                invoices,
                segment=debtor.segment,
                as_of=today(debtor),
                rules=active_policy(session).letters,
            )
            utter(
                dispatcher,
                "utter_fees",
                segment="b2b",
                currency=currency,
                interest_minor=claim.interest_minor,
                indemnity_minor=claim.indemnity_minor,
            )
        return []


def _forgot_the_paid_date(tracker: Tracker) -> bool:
    """The already-paid form asks for the date and the debtor says they do not remember it."""
    return (
        tracker.active_loop_name == "already_paid_form"
        and tracker.get_slot("requested_slot") == "paid_date"
        and forgot_the_date(latest_text(tracker))
    )
