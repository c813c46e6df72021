"""Balance, details, invoice copy, fees, payment link, already paid."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.balance import (
    ActionExplainFees,
    ActionGiveBalance,
    ActionGiveDebtDetails,
    ActionSendInvoiceCopy,
)
from actions.payments import (
    ActionRecordAlreadyPaid,
    ActionSendPaymentLink,
    ValidateAlreadyPaidForm,
)
from relance.db.models import Invoice, PaymentLink, Task
from relance.disputes.service import create_dispute
from relance.nlg.formatting import money
from relance.nlg.renderer import render
from relance.nlg.templates_store import bundled_templates
from tests.actions.conftest import make_tracker, responses, slots_for
from tests.factories import make_conversation, make_debtor, make_invoice


def test_balance_sums_open_invoices(dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    ActionGiveBalance().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    [message] = dispatcher.messages
    assert message["response"] == "utter_balance"
    assert message["balance_minor"] == 30_000 and message["invoice_count"] == 2


@pytest.mark.parametrize("language", ["fr", "en"])
def test_balance_asked_inside_a_form_asks_no_second_question(
    dispatcher, debtor_setup, language: str
) -> None:
    """Simulator finding: "combien je dois ?" while the plan form waited for "how often?" (now
    answered, then the form asks again) must not also ask "would you like a payment link?"."""
    owner, conv = debtor_setup
    tracker = make_tracker(slots_for(owner, conv, language=language), active_loop="plan_form")
    ActionGiveBalance().run(dispatcher, tracker, {})
    [message] = dispatcher.messages
    assert message["form_active"] is True
    variables = {k: v for k, v in message.items() if k not in ("response", "template")}
    variables |= {"creditor_name": "x", "creditor_phone": "x"}
    inside = render(
        bundled_templates(), "utter_balance", language=language, channel="sms", variables=variables
    )
    outside = render(
        bundled_templates(),
        "utter_balance",
        language=language,
        channel="sms",
        variables=variables | {"form_active": False},
    )
    assert "300" in inside and "?" not in inside, inside
    assert outside.endswith("?"), outside


def test_nothing_said_before_identity(dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    tracker = make_tracker(slots_for(owner, conv, identity_verified=False))
    for action in (
        ActionGiveBalance(),
        ActionGiveDebtDetails(),
        ActionSendPaymentLink(),
        ActionExplainFees(),
        ActionSendInvoiceCopy(),
    ):
        action.run(dispatcher, tracker, {})
    assert dispatcher.messages == []


def test_details_list_invoices(dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    ActionGiveDebtDetails().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    [message] = dispatcher.messages
    assert len(message["invoices"]) == 2 and message["invoices"][0]["days_late"] >= 10


def test_invoice_copy_becomes_a_task(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    ActionSendInvoiceCopy().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    task = db.scalars(select(Task).where(Task.kind == "invoice_copy")).one()
    assert task.debtor_id == owner.id and len(task.details["invoices"]) == 2
    assert responses(dispatcher) == ["utter_invoice_copy_requested"]


def test_invoice_copy_reply_names_every_invoice_asked_for_in_the_plural(
    db: Session, dispatcher, debtor_setup
) -> None:
    """It said "une copie de la facture F-1, F-2 … Vous la recevrez" (one comma-joined string)."""
    owner, conv = debtor_setup
    ActionSendInvoiceCopy().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    task = db.scalars(select(Task).where(Task.kind == "invoice_copy")).one()
    [message] = dispatcher.messages
    assert message["invoice_refs"] == task.details["invoices"]
    first, second = message["invoice_refs"]
    variables = {k: v for k, v in message.items() if k not in ("response", "template")}
    text = render(
        bundled_templates(), "utter_invoice_copy_requested", language="fr", variables=variables
    )
    assert f"une copie des factures {first} et {second}" in text and "Vous les recevrez" in text


def test_fees_b2b_mentions_interest_and_indemnity(db: Session, dispatcher) -> None:
    owner = make_debtor(db, segment="b2b")
    make_invoice(db, owner, amount_minor=100_000, due_date=date.today() - timedelta(days=30))
    conv = make_conversation(db, owner)
    ActionExplainFees().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    [message] = dispatcher.messages
    assert message["segment"] == "b2b" and message["indemnity_minor"] == 4000
    assert message["interest_minor"] > 0


def test_fees_consumer_none_added(dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    ActionExplainFees().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    assert dispatcher.messages[0]["segment"] == "consumer"
    assert dispatcher.messages[0]["fees_minor"] == 0


def test_payment_link_for_the_balance(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    ActionSendPaymentLink().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    [message] = dispatcher.messages
    assert message["response"] == "utter_payment_link" and message["amount_minor"] == 30_000
    assert message["custom"]["payment_url"] == message["pay_url"]
    assert "/pay/" in message["pay_url"]
    assert db.scalars(select(PaymentLink).where(PaymentLink.debtor_id == owner.id)).one()


def test_payment_link_when_nothing_owed(db: Session, dispatcher) -> None:
    owner = make_debtor(db)
    conv = make_conversation(db, owner)
    ActionSendPaymentLink().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    assert responses(dispatcher) == ["utter_no_balance"]


@freeze_time("2026-12-01 23:30:00")  # already 2 December in Paris
def test_paid_date_and_reference_validation(db: Session, dispatcher) -> None:
    form = ValidateAlreadyPaidForm()
    tracker = make_tracker()
    # "hier" is the debtor's yesterday (default zone Europe/Paris), not the server's (UTC).
    assert form.validate_paid_date("hier", dispatcher, tracker, {}) == {"paid_date": "2026-12-01"}
    assert form.validate_paid_date("blabla", dispatcher, tracker, {}) == {"paid_date": None}
    assert responses(dispatcher) == ["utter_invalid_answer"]
    assert form.validate_payment_reference("je n'ai pas la référence", dispatcher, tracker, {}) == {
        "payment_reference": "unknown"
    }
    assert form.validate_payment_reference("VIR-88412", dispatcher, tracker, {}) == {
        "payment_reference": "VIR-88412"
    }


@freeze_time("2026-12-07 12:00:00")
@pytest.mark.parametrize(
    ("text", "span", "language", "expected"),
    [
        # Seen in the simulator: recorded as the reference, beside "last week"'s date.
        (
            "by bank transfer on the 28th",
            "the 28th",
            "en",
            {"paid_date": "2026-11-28", "payment_reference": None},
        ),
        (
            "par virement le 28",
            "le 28",
            "fr",
            {"paid_date": "2026-11-28", "payment_reference": None},
        ),
        (
            "VIR-88412 le 3 décembre",
            "le 3 décembre",
            "fr",
            {"paid_date": "2026-12-03", "payment_reference": "VIR-88412"},
        ),
        (
            "cheque 1234567 on the 2nd",
            "the 2nd",
            "en",
            {"paid_date": "2026-12-02", "payment_reference": "1234567"},
        ),
    ],
)
def test_a_date_given_for_the_reference_corrects_the_paid_date(
    dispatcher, text: str, span: str, language: str, expected: dict[str, object]
) -> None:
    """To "do you have a payment reference?", a date is the day it was paid, said again more
    precisely; the reference is asked again unless one came with it."""
    tracker = make_tracker(
        {"language": language, "paid_date": "2026-11-30", "requested_slot": "payment_reference"},
        text=text,
        intent="inform",
        entities=[{"entity": "date", "value": span}],
    )
    form = ValidateAlreadyPaidForm()
    assert form.validate_payment_reference(text, dispatcher, tracker, {}) == expected
    assert responses(dispatcher) == []


@freeze_time("2026-12-07 12:00:00")
def test_a_date_cut_in_pieces_is_still_no_reference(dispatcher) -> None:
    """The CI model labels "on" and "the 28th" as two dates: "28th" is not the reference."""
    text = "by bank transfer on the 28th"
    tracker = make_tracker(
        {"language": "en", "paid_date": "2026-11-30", "requested_slot": "payment_reference"},
        text=text,
        entities=[{"entity": "date", "value": "on"}, {"entity": "date", "value": "the 28th"}],
    )
    assert ValidateAlreadyPaidForm().validate_payment_reference(text, dispatcher, tracker, {}) == {
        "paid_date": "2026-11-28",
        "payment_reference": None,
    }


def test_a_reference_without_a_date_is_kept_whole(dispatcher) -> None:
    tracker = make_tracker(
        {"requested_slot": "payment_reference"}, text="virement BNP du compte pro"
    )
    assert ValidateAlreadyPaidForm().validate_payment_reference(
        "virement BNP du compte pro", dispatcher, tracker, {}
    ) == {"payment_reference": "virement BNP du compte pro"}


def test_already_paid_opens_reconciliation_and_pauses(
    db: Session, dispatcher, debtor_setup
) -> None:
    owner, conv = debtor_setup
    tracker = make_tracker(
        slots_for(owner, conv, paid_date="2026-11-20", payment_reference="VIR-1")
    )
    events = ActionRecordAlreadyPaid().run(dispatcher, tracker, {})
    task = db.scalars(
        select(Task).where(Task.kind == "reconciliation", Task.debtor_id == owner.id)
    ).one()
    assert task.details["claims"][0]["reference"] == "VIR-1"
    invoices = db.scalars(select(Invoice).where(Invoice.debtor_id == owner.id)).all()
    assert all(i.dunning_paused_until and i.dunning_paused_until > date.today() for i in invoices)
    assert responses(dispatcher) == ["utter_already_paid_recorded"]
    assert {e["name"] for e in events} == {"paid_date", "payment_reference"}


def _plan_with_first_installment_paid(db: Session, owner) -> tuple[int, date]:
    """A 3-month plan over the 300 € owed; the first 100 € paid. Returns the next (amount, date)."""
    from relance.plans.service import create_plan, evaluate
    from tests.support.plan_limits import limits

    proposal = evaluate(
        limits(min_first_payment_pct=0, min_installment_minor=1_000),
        total_minor=30_000,
        currency="EUR",
        installments=3,
        frequency="monthly",
        today=date.today(),
    ).proposal
    assert proposal is not None
    plan = create_plan(db, owner, proposal)
    first, second = plan.installments[0], plan.installments[1]
    first.paid_minor, first.status = first.amount_minor, "paid"
    db.flush()
    return second.amount_minor, second.due_date


def test_on_a_plan_the_balance_names_the_next_installment(dispatcher, db, debtor_setup) -> None:
    """Simulator finding: after agreeing a plan, "combien je dois encore ?" gave the whole balance
    and offered a link for all of it, as if the plan did not exist."""
    owner, conv = debtor_setup
    amount, due = _plan_with_first_installment_paid(db, owner)
    ActionGiveBalance().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    [message] = dispatcher.messages
    assert message["next_installment_minor"] == amount
    assert message["next_installment_date"] == due.isoformat()


def test_on_a_plan_the_invoice_details_name_the_next_installment(
    dispatcher, db, debtor_setup
) -> None:
    """Simulator finding: "ok et je commence quand ?" right after agreeing a plan listed the
    invoices with their own due dates, one of them past: nothing said what to pay, or when."""
    owner, conv = debtor_setup
    amount, due = _plan_with_first_installment_paid(db, owner)
    ActionGiveDebtDetails().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    [message] = dispatcher.messages
    assert message["next_installment_minor"] == amount
    assert message["next_installment_date"] == due.isoformat()
    variables = {key: value for key, value in message.items() if key != "response"}
    text = render(bundled_templates(), "utter_debt_details", language="fr", variables=variables)
    assert f"la prochaine échéance est de {money(amount, 'EUR', 'fr')}, le " in text


def test_an_invoice_not_yet_due_is_not_said_to_have_fallen_due(dispatcher, debtor_setup) -> None:
    """ "échue le 16 décembre" of a date to come is wrong French: it is "à régler au plus tard"."""
    invoices = [
        {
            "number": "F-1",
            "amount_minor": 1000,
            "currency": "EUR",
            "due_date": "2026-11-21",
            "days_late": 15,
        },
        {
            "number": "F-2",
            "amount_minor": 2000,
            "currency": "EUR",
            "due_date": "2026-12-16",
            "days_late": 0,
        },
    ]
    text = render(
        bundled_templates(),
        "utter_debt_details",
        language="fr",
        variables={"invoices": invoices, "creditor_name": "ACME", "currency": "EUR"},
    )
    assert f"F-1, {money(1000)}, échue le 21 novembre 2026" in text
    assert f"F-2, {money(2000)}, à régler au plus tard le 16 décembre 2026" in text


def test_on_a_plan_the_payment_link_is_for_the_next_installment(
    dispatcher, db, debtor_setup
) -> None:
    owner, conv = debtor_setup
    amount, due = _plan_with_first_installment_paid(db, owner)
    ActionSendPaymentLink().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    [message] = dispatcher.messages
    assert (message["amount_minor"], message["installment_date"]) == (amount, due.isoformat())
    link = db.scalars(select(PaymentLink).where(PaymentLink.debtor_id == owner.id)).one()
    assert (link.purpose, link.amount_minor) == ("installment", amount)


@pytest.mark.parametrize("action", [ActionGiveBalance, ActionGiveDebtDetails])
def test_an_invoice_under_dispute_is_not_nothing_to_pay(db: Session, dispatcher, action) -> None:
    """Simulator finding: right after a dispute was registered, "how much again" got "Good news:
    there is nothing left to pay on your account" about an invoice still owed if the dispute is
    rejected. The reply says it is under dispute and reminders are paused."""
    owner = make_debtor(db)
    conv = make_conversation(db, owner)
    invoice = make_invoice(db, owner, 41_829, number="F-DSP-1")
    create_dispute(db, owner, reason="not_received", details="never got it", invoice_id=invoice.id)
    db.flush()
    action().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    [message] = dispatcher.messages
    assert message["response"] == "utter_balance_disputed"
    variables = {k: v for k, v in message.items() if k != "response"}
    english = render(
        bundled_templates(), "utter_balance_disputed", language="en", variables=variables
    )
    assert "invoice F-DSP-1 (€418.29) is under dispute" in english, english
    assert "nothing left" not in english


def _asked_paid_date(unread: int) -> list[dict[str, object]]:
    """The already-paid form's events: activated, asked for the date, `unread` answers no date."""
    events: list[dict[str, object]] = [
        {"event": "active_loop", "name": "already_paid_form"},
        {"event": "bot", "text": "...", "metadata": {"utter_action": "utter_ask_paid_date"}},
    ]
    for _ in range(unread):
        events += [
            {"event": "user", "text": "par virement"},
            {
                "event": "bot",
                "text": "...",
                "metadata": {"utter_action": "utter_invalid_answer", "field": "date"},
            },
            {
                "event": "bot",
                "text": "...",
                "metadata": {"utter_action": "utter_ask_paid_date_again"},
            },
        ]
    return [*events, {"event": "user", "text": "par virement"}]


def test_the_paid_date_asked_again_says_an_approximate_date_or_i_dont_know_will_do(
    dispatcher,
) -> None:
    # Simulator: "Merci de nous le signaler. À quelle date avez-vous payé ?" seven times in a row.
    from actions.payments import ActionAskPaidDate

    ActionAskPaidDate().run(dispatcher, make_tracker(events=_asked_paid_date(0)[:1]), {})
    ActionAskPaidDate().run(dispatcher, make_tracker(events=_asked_paid_date(0)), {})
    assert responses(dispatcher) == ["utter_ask_paid_date", "utter_ask_paid_date_again"]


@pytest.mark.parametrize(
    "text", ["je sais plus", "je me souviens plus", "I don't remember", "no idea", "jsp"]
)
def test_a_debtor_who_does_not_remember_the_date_goes_on_without_one(dispatcher, text) -> None:
    tracker = make_tracker(events=_asked_paid_date(0), text=text)
    assert ValidateAlreadyPaidForm().validate_paid_date(text, dispatcher, tracker, {}) == {
        "paid_date": "unknown"
    }
    assert responses(dispatcher) == []


def test_after_two_answers_that_were_no_date_the_report_goes_on_without_one(dispatcher) -> None:
    form = ValidateAlreadyPaidForm()
    once = make_tracker(events=_asked_paid_date(1), text="vous voulez une preuve?")
    assert form.validate_paid_date("vous voulez une preuve?", dispatcher, once, {}) == {
        "paid_date": None
    }
    twice = make_tracker(events=_asked_paid_date(2), text="ok")
    assert form.validate_paid_date("ok", dispatcher, twice, {}) == {"paid_date": "unknown"}
    assert responses(dispatcher) == ["utter_invalid_answer"]


def test_a_report_without_a_date_is_recorded_and_said_without_one(
    db: Session, dispatcher, debtor_setup
) -> None:
    owner, conv = debtor_setup
    tracker = make_tracker(slots_for(owner, conv, paid_date="unknown", payment_reference="unknown"))
    ActionRecordAlreadyPaid().run(dispatcher, tracker, {})
    [message] = dispatcher.messages
    assert message["response"] == "utter_already_paid_recorded"
    assert message["paid_date"] is None
    task = db.scalars(select(Task).where(Task.debtor_id == owner.id)).one()
    assert task.details["claims"][-1]["claimed_date"] is None
    text = render(
        bundled_templates(),
        "utter_already_paid_recorded",
        language="fr",
        channel="sms",
        variables={k: v for k, v in message.items() if k not in ("response", "json_message")},
    )
    assert text.startswith("Merci. Nous vérifions votre paiement et suspendons"), text


def test_i_dont_remember_read_as_a_balance_question_answers_the_date_question(
    dispatcher, debtor_setup
) -> None:
    # CI model: "i don't remember" is ask_balance (0.94); the form's aside rule ran the balance.
    owner, conv = debtor_setup
    tracker = make_tracker(
        slots_for(owner, conv, requested_slot="paid_date"),
        text="i don't remember",
        intent="ask_balance",
        active_loop="already_paid_form",
    )
    events = ActionGiveBalance().run(dispatcher, tracker, {})
    assert events == [{"event": "slot", "timestamp": None, "name": "paid_date", "value": "unknown"}]
    assert dispatcher.messages == []
    outside = make_tracker(slots_for(owner, conv), text="i don't remember", intent="ask_balance")
    ActionGiveBalance().run(dispatcher, outside, {})
    assert responses(dispatcher) == ["utter_balance"]
