"""Disputes, plans and promises through the actions."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.disputes import ActionCreateDispute, ValidateDisputeForm
from actions.plans import (
    ActionCreatePlan,
    ActionEvaluatePlan,
    ActionRequestPlanApproval,
    ValidatePlanForm,
)
from actions.promises import ActionRecordPromise, ValidatePromiseForm
from relance.db.models import Dispute, Handoff, PaymentPlan, Promise, Task
from relance.nlg.renderer import render
from relance.nlg.templates_store import bundled_templates
from tests.actions.conftest import make_tracker, responses, slots_for
from tests.factories import make_conversation, make_debtor, make_invoice, make_plan


def _slot(events: list[dict], name: str) -> object:
    return next(e["value"] for e in events if e.get("name") == name)


def test_dispute_reason_classified_or_asked(dispatcher) -> None:
    form = ValidateDisputeForm()
    prefilled = make_tracker({"requested_slot": None})
    assert form.validate_dispute_reason(
        "je n'ai jamais reçu la marchandise", dispatcher, prefilled, {}
    ) == {"dispute_reason": "not_received"}
    assert form.validate_dispute_reason("I dispute this", dispatcher, prefilled, {}) == {
        "dispute_reason": None
    }
    asked = make_tracker({"requested_slot": "dispute_reason"})
    assert form.validate_dispute_reason(
        "the colour is not what we chose", dispatcher, asked, {}
    ) == {"dispute_reason": "other", "dispute_details": "the colour is not what we chose"}


def test_dispute_created_with_reference_and_task(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    tracker = make_tracker(
        slots_for(
            owner, conv, dispute_reason="wrong_amount", dispute_details="devis à 800, facture à 950"
        )
    )
    events = ActionCreateDispute().run(dispatcher, tracker, {})
    dispute = db.scalars(select(Dispute).where(Dispute.debtor_id == owner.id)).one()
    assert dispute.reason == "wrong_amount" and dispute.reference.startswith("LIT-")
    assert dispute.invoice_id is None  # two open invoices: the whole account is disputed
    assert db.scalars(select(Task).where(Task.kind == "dispute_review")).one()
    assert dispatcher.messages[0]["dispute_reference"] == dispute.reference
    assert _slot(events, "dispute_reference") == dispute.reference


@pytest.mark.parametrize(
    ("said", "named"),
    [
        (["la facture F-2026-0002, le colis n'est jamais arrivé"], 1),  # the second invoice
        (["je conteste une facture", "c'est la f 2026 0001 je l'ai jamais reçue"], 0),
        (["the goods never arrived"], None),  # no number: the whole account
        (["F-2026-0001 et F-2026-0002 sont fausses"], None),  # both: the whole account
    ],
)
def test_a_dispute_names_the_invoice_the_debtor_wrote(
    db: Session, dispatcher, said: list[str], named: int | None
) -> None:
    """Simulator finding: "la facture F2026-1007, le colis n'est jamais arrivé" registered a
    dispute against the whole account, so every reminder and the whole payment plan stopped for
    one contested invoice of two."""
    owner = make_debtor(db, postcode="75011", segment="consumer")
    invoices = [
        make_invoice(db, owner, number=f"F-2026-000{n}", amount_minor=30_000) for n in (1, 2)
    ]
    conv = make_conversation(db, owner)
    events = [
        {"event": "user", "text": text, "parse_data": {"intent": {"name": "dispute_debt"}}}
        for text in said
    ]
    tracker = make_tracker(
        slots_for(owner, conv, dispute_reason="not_received", dispute_details=said[-1]),
        text=said[-1],
        events=events,
    )
    ActionCreateDispute().run(dispatcher, tracker, {})
    dispute = db.scalars(select(Dispute).where(Dispute.debtor_id == owner.id)).one()
    assert dispute.invoice_id == (invoices[named].id if named is not None else None)


@pytest.mark.parametrize("invoices", [1, 2])
def test_a_dispute_under_a_payment_plan_says_the_plan_is_paused(db: Session, dispatcher, invoices):
    """The debtor disputes while a plan runs over their invoice (one: the dispute names it; two:
    the whole account): its instalments are held, and the reply says so, in both languages, so
    that the debtor does not expect their card to be charged for what they contest."""
    owner = make_debtor(db, postcode="75011", segment="consumer")
    covered = [make_invoice(db, owner, amount_minor=30_000) for _ in range(invoices)]
    plan = make_plan(db, owner, [10_000] * (3 * invoices), invoices=covered)
    conv = make_conversation(db, owner)
    tracker = make_tracker(
        slots_for(owner, conv, dispute_reason="not_received", dispute_details="jamais livré")
    )

    ActionCreateDispute().run(dispatcher, tracker, {})
    db.expire_all()  # the action wrote through its own unit of work

    dispute = db.scalars(select(Dispute).where(Dispute.debtor_id == owner.id)).one()
    assert {inst.hold_id for inst in plan.installments} == {dispute.id}
    [message] = dispatcher.messages
    assert message["response"] == "utter_dispute_created"
    assert (message["plan_held"], message["held_minor"]) == ("all", 30_000 * invoices)
    said = {
        language: render(
            bundled_templates(),
            "utter_dispute_created",
            language=language,
            variables={**message, "creditor_name": "x"},
        )
        for language in ("fr", "en")
    }
    assert "Votre échéancier est suspendu" in said["fr"] and "prélevée" in said["fr"]
    assert "Your payment plan is paused too" in said["en"] and "charged" in said["en"]


def test_a_dispute_without_a_plan_says_nothing_of_one(
    db: Session, dispatcher, debtor_setup
) -> None:
    owner, conv = debtor_setup
    tracker = make_tracker(slots_for(owner, conv, dispute_reason="defective"))
    ActionCreateDispute().run(dispatcher, tracker, {})
    [message] = dispatcher.messages
    assert "plan_held" not in message
    said = render(
        bundled_templates(),
        "utter_dispute_created",
        language="en",
        variables={**message, "creditor_name": "x"},
    )
    assert "plan" not in said


def test_dispute_with_legal_words_hands_off(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    tracker = make_tracker(
        slots_for(
            owner, conv, dispute_reason="other", dispute_details="mon avocat va saisir le tribunal"
        )
    )
    ActionCreateDispute().run(dispatcher, tracker, {})
    handoff = db.scalars(select(Handoff).where(Handoff.conversation_id == conv.id)).one()
    assert handoff.reason == "legal"
    assert responses(dispatcher) == ["utter_dispute_created", "utter_handoff"]


def test_plan_form_normalises(dispatcher) -> None:
    form = ValidatePlanForm()
    tracker = make_tracker({"requested_slot": "plan_installments"})
    assert form.validate_plan_installments("en trois fois", dispatcher, tracker, {}) == {
        "plan_installments": 3
    }
    assert form.validate_plan_installments("bof", dispatcher, tracker, {}) == {
        "plan_installments": None
    }
    assert form.validate_plan_frequency("tous les quinze jours", dispatcher, tracker, {}) == {
        "plan_frequency": "biweekly"
    }


@pytest.mark.parametrize(
    ("text", "intent", "language"),
    [
        ("oui", "affirm", "fr"),
        ("ok", "affirm", "fr"),
        ("peu importe", "inform", "fr"),
        ("comme vous voulez", "inform", "fr"),
        ("ça m'est égal", "inform", "fr"),
        ("yes", "affirm", "en"),
        ("whatever suits you", "inform", "en"),
        ("doesn't matter", "inform", "en"),
        ("up to you", "inform", "en"),
    ],
)
def test_yes_or_no_preference_to_how_often_takes_monthly(
    dispatcher, text: str, intent: str, language: str
) -> None:
    """Simulator finding: "oui" to "monthly, every two weeks or weekly?" got "Sorry, I couldn't
    read that". An agreeable answer takes the first choice offered; the proposal says it and
    waits for the debtor's yes."""
    tracker = make_tracker(
        {"requested_slot": "plan_frequency", "language": language}, text=text, intent=intent
    )
    assert ValidatePlanForm().validate_plan_frequency(text, dispatcher, tracker, {}) == {
        "plan_frequency": "monthly"
    }
    assert dispatcher.messages == []


@pytest.mark.parametrize("text", ["bof", "n'importe quoi", "je sais pas encore"])
def test_an_unreadable_rhythm_is_still_asked_again(dispatcher, text: str) -> None:
    tracker = make_tracker({"requested_slot": "plan_frequency"}, text=text, intent="inform")
    assert ValidatePlanForm().validate_plan_frequency(text, dispatcher, tracker, {}) == {
        "plan_frequency": None
    }
    assert responses(dispatcher) == ["utter_invalid_answer"]


def test_plan_within_limits_then_created_with_first_link(
    db: Session, dispatcher, debtor_setup
) -> None:
    owner, conv = debtor_setup  # 300 € consumer: up to 3 instalments
    tracker = make_tracker(slots_for(owner, conv, plan_installments=3, plan_frequency="monthly"))
    events = ActionEvaluatePlan().run(dispatcher, tracker, {})
    assert _slot(events, "plan_status") == "within_limits"
    assert dispatcher.messages[0]["response"] == "utter_plan_within_limits"
    assert dispatcher.messages[0]["installment_minor"] == 10_000
    proposal = _slot(events, "plan_proposal")
    created = ActionCreatePlan().run(
        dispatcher, make_tracker(slots_for(owner, conv, plan_proposal=proposal)), {}
    )
    assert _slot(created, "plan_status") == "created"
    plan = db.scalars(select(PaymentPlan).where(PaymentPlan.debtor_id == owner.id)).one()
    assert plan.status == "active" and [i.amount_minor for i in plan.installments] == [10_000] * 3
    assert "/pay/" in dispatcher.messages[-1]["pay_url"]


def test_plan_outside_limits_counter_offer_then_refused(
    db: Session, dispatcher, debtor_setup
) -> None:
    owner, conv = debtor_setup
    tracker = make_tracker(slots_for(owner, conv, plan_installments=10, plan_frequency="weekly"))
    events = ActionEvaluatePlan().run(dispatcher, tracker, {})
    assert _slot(events, "plan_status") == "counter_offer"
    assert dispatcher.messages[0]["response"] == "utter_plan_counter_offer"
    assert dispatcher.messages[0]["installments"] == 3
    assert dispatcher.messages[0]["requested_installments"] == 10  # the wording tells them apart
    refused = ActionRequestPlanApproval().run(
        dispatcher,
        make_tracker(
            slots_for(
                owner, conv, plan_status="counter_offer", plan_request=_slot(events, "plan_request")
            )
        ),
        {},
    )
    plan = db.scalars(select(PaymentPlan).where(PaymentPlan.debtor_id == owner.id)).one()
    assert plan.status == "pending_approval" and plan.installments_count == 10
    assert (
        db.scalars(select(Handoff).where(Handoff.conversation_id == conv.id)).one().reason
        == "plan_approval"
    )
    assert _slot(refused, "plan_status") == "pending_approval"
    assert _slot(refused, "handed_off") is True


@freeze_time("2026-12-01 23:30:00")  # already 2 December in Paris
def test_promise_form_checks_date_window_and_amount(dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    form = ValidatePromiseForm()
    tracker = make_tracker(slots_for(owner, conv))
    tomorrow = (date(2026, 12, 2) + timedelta(days=1)).isoformat()  # the debtor's tomorrow
    assert form.validate_promise_date("demain", dispatcher, tracker, {}) == {
        "promise_date": tomorrow
    }
    far = (date.today() + timedelta(days=90)).strftime("%d/%m/%Y")
    assert form.validate_promise_date(far, dispatcher, tracker, {}) == {"promise_date": None}
    assert responses(dispatcher) == ["utter_promise_too_late"]
    assert form.validate_promise_amount("la totalité", dispatcher, tracker, {}) == {
        "promise_amount": 30_000
    }
    assert form.validate_promise_amount("cent euros", dispatcher, tracker, {}) == {
        "promise_amount": 10_000
    }
    # More than the balance is asked again, never cut down to a promise of everything (seen in
    # the simulator: "75011", a postcode typed at the amount question, became the whole balance).
    for slip in ("5000 €", "75011"):
        dispatcher.messages.clear()
        assert form.validate_promise_amount(slip, dispatcher, tracker, {}) == {
            "promise_amount": None
        }
        [message] = dispatcher.messages
        assert message["response"] == "utter_promise_amount_too_high"
        assert (message["balance_minor"], message["currency"]) == (30_000, "EUR")
    # The form asks "how much?" right after: the reply asks nothing itself (seen in the
    # simulator: the question came twice).
    for language in ("fr", "en"):
        said = render(
            bundled_templates(),
            "utter_promise_amount_too_high",
            language=language,
            variables={"balance_minor": 30_000, "currency": "EUR", "creditor_name": "x"},
        )
        assert "300" in said and "?" not in said, said


@pytest.mark.parametrize(
    ("text", "intent", "expected"),
    [
        ("3", "inform", None),  # a bare figure: a count, a day, meant for another question
        ("200", "inform", None),
        ("3 €", "inform", 300),
        ("200 balles", "inform", 20_000),
        ("a hundred bucks", "inform", 10_000),
        ("tout", "inform", 30_000),
        ("je paye 200 le 15", "promise_to_pay", 20_000),  # the message itself is the promise
    ],
)
def test_a_promised_amount_needs_a_clear_cue(
    dispatcher, debtor_setup, text: str, intent: str, expected: int | None
) -> None:
    """Monkey finding: "3" typed while the promise form asked "how much?" recorded a promise of
    3,00 € out of the balance, and reminders stopped until its date. A bare figure is asked
    again with its currency; nothing is recorded."""
    owner, conv = debtor_setup
    tracker = make_tracker(slots_for(owner, conv), text=text, intent=intent)
    slot = text.split(" le ")[0].removeprefix("je paye ")
    result = ValidatePromiseForm().validate_promise_amount(slot, dispatcher, tracker, {})
    assert result == {"promise_amount": expected}
    if expected is None:
        [message] = dispatcher.messages
        assert message["response"] == "utter_promise_amount_needs_currency"
        assert message["amount_minor"] == int(slot) * 100
        said = render(
            bundled_templates(),
            "utter_promise_amount_needs_currency",
            language="fr",
            variables={**message, "creditor_name": "x"},
        )
        assert f"{slot},00" in said and "300,00" in said and "?" not in said, said
    else:
        assert dispatcher.messages == []


def test_promise_recorded(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    when = (date.today() + timedelta(days=5)).isoformat()
    tracker = make_tracker(slots_for(owner, conv, promise_date=when, promise_amount=15_000))
    ActionRecordPromise().run(dispatcher, tracker, {})
    promise = db.scalars(select(Promise).where(Promise.debtor_id == owner.id)).one()
    assert promise.amount_minor == 15_000 and promise.promised_date.isoformat() == when
    assert len(promise.invoice_ids) == 2
    assert dispatcher.messages[0]["promise_date"] == when


def test_plan_question_gives_the_policy_maximum(dispatcher, debtor_setup) -> None:
    from actions.plans import ActionAskPlanInstallments

    owner, conv = debtor_setup  # 300 € consumer band: 3 instalments at most
    ActionAskPlanInstallments().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    assert dispatcher.messages[0]["response"] == "utter_ask_plan_installments"
    assert dispatcher.messages[0]["max_installments"] == 3


def test_plan_needs_approval_keeps_the_request(db: Session, dispatcher) -> None:

    owner = make_debtor(db, segment="consumer")
    make_invoice(db, owner, amount_minor=3000)  # too small to split under the policy
    conv = make_conversation(db, owner)
    events = ActionEvaluatePlan().run(
        dispatcher,
        make_tracker(slots_for(owner, conv, plan_installments=4, plan_frequency="monthly")),
        {},
    )
    assert _slot(events, "plan_status") == "needs_approval"
    assert dispatcher.messages == []  # the approval action speaks next
    ActionRequestPlanApproval().run(
        dispatcher,
        make_tracker(
            slots_for(
                owner,
                conv,
                plan_status="needs_approval",
                plan_request=_slot(events, "plan_request"),
            )
        ),
        {},
    )
    assert responses(dispatcher) == ["utter_plan_needs_approval"]
    assert db.scalars(
        select(Task).where(Task.kind == "plan_approval", Task.debtor_id == owner.id)
    ).one()


@freeze_time("2026-12-02 03:30:00")  # 1 December, 22:30 in New York
def test_promise_date_is_read_in_the_debtor_time_zone(db: Session, dispatcher) -> None:

    owner = make_debtor(db, timezone="America/New_York", language="en")
    conv = make_conversation(db, owner)
    tracker = make_tracker(slots_for(owner, conv))
    assert ValidatePromiseForm().validate_promise_date("tomorrow", dispatcher, tracker, {}) == {
        "promise_date": "2026-12-02"
    }


@freeze_time("2026-12-20 12:00:00")  # promises up to 19 January
@pytest.mark.parametrize(
    ("slot", "text", "language", "expected"),
    [
        # Simulator: 'the 3rd of' was this month's 3rd (then "too late"), 'on the 15th' lost
        # January; the message said the whole date.
        ("the 3rd of", "100 bucks the 3rd of next month", "en", "2027-01-03"),
        ("on the 15th", "and the rest on the 15th of january", "en", "2027-01-15"),
        ("le 3", "je paie le 3 du mois prochain", "fr", "2027-01-03"),
        ("le 15", "et le reste le 15 janvier", "fr", "2027-01-15"),
        ("deux", "deux cent cinquante fin du mois", "fr", "2026-12-31"),
        ("fin du", "fin du mois alors", "fr", "2026-12-31"),
        ("le 24", "le 24", "fr", "2026-12-24"),  # a date said as such stays as it was
    ],
)
def test_a_promise_date_cut_by_the_nlu_is_read_from_the_whole_message(
    dispatcher, debtor_setup, slot: str, text: str, language: str, expected: str
) -> None:
    owner, conv = debtor_setup
    tracker = make_tracker(slots_for(owner, conv, language=language), text=text)
    result = ValidatePromiseForm().validate_promise_date(slot, dispatcher, tracker, {})
    assert result == {"promise_date": expected}, dispatcher.messages


@pytest.mark.parametrize(
    ("slot", "text", "intent", "expected"),
    [
        ("deux", "deux cent cinquante euros", "inform", 25_000),  # DIET took 'deux'
        ("deux", "deux cent cinquante fin du mois", "promise_to_pay", 25_000),
        ("150", "150 balles vendredi", "inform", 15_000),
        ("100", "100 bucks", "inform", 10_000),
    ],
)
def test_a_promised_amount_cut_by_the_nlu_is_read_from_the_whole_message(
    dispatcher, debtor_setup, slot: str, text: str, intent: str, expected: int
) -> None:
    owner, conv = debtor_setup
    tracker = make_tracker(slots_for(owner, conv), text=text, intent=intent)
    result = ValidatePromiseForm().validate_promise_amount(slot, dispatcher, tracker, {})
    assert result == {"promise_amount": expected}, dispatcher.messages


@pytest.mark.parametrize(
    ("text", "intent", "requested", "expected"),
    [
        ("ill pay 200 on friday", "promise_to_pay", None, 20_000),  # '200' taken as a date
        ("je paie 150 balles vendredi", "promise_to_pay", None, 15_000),
        ("100 quid on the 20th", "inform", "promise_date", 10_000),
        ("i'll pay on the 20th", "promise_to_pay", None, None),  # no amount: asked next
        ("le 20", "inform", "promise_date", None),
    ],
)
def test_the_promise_form_reads_the_amount_of_the_whole_message(
    dispatcher, debtor_setup, text: str, intent: str, requested: str | None, expected: int | None
) -> None:
    owner, conv = debtor_setup
    tracker = make_tracker(
        slots_for(owner, conv, requested_slot=requested), text=text, intent=intent
    )
    form = ValidatePromiseForm()
    extracted = form.extract_promise_amount(dispatcher, tracker, {})
    if expected is None:
        assert extracted == {}
        return
    assert extracted == {"promise_amount": text}
    assert form.validate_promise_amount(text, dispatcher, tracker, {}) == {
        "promise_amount": expected
    }
