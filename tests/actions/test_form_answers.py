"""A form takes no off-topic message as an answer (issue 24).

When a form (promise, plan, already paid, dispute, identity) has asked its question, a message the
NLU labels out_of_scope or nlu_fallback, or one the ConsequenceGuard held back for an intent
foreign to the form, leaves the slot empty: "le train de samedi" is not a promise date. Genuine
answers, unusual ones included (a bare "99,99 €" DIET falls back on, "dans 10 jours"), and a weak
reading of the form's own intent still fill it.
"""

from __future__ import annotations

from typing import Any

import pytest
from freezegun import freeze_time
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions._common import not_an_answer
from actions.disputes import ValidateDisputeForm
from actions.identity import ValidateIdentityForm
from actions.payments import ValidateAlreadyPaidForm
from actions.plans import ValidatePlanForm
from actions.promises import ValidatePromiseForm
from bot.components.evidence import CONFIRM_INTENT
from relance.db.models import Conversation, Debtor
from tests.actions.conftest import make_tracker, slots_for

Setup = tuple[Debtor, Conversation]


def _tracker(
    setup: Setup, text: str, intent: str, language: str, requested: str, guarded: str = ""
) -> Tracker:
    owner, conv = setup
    tracker = make_tracker(
        slots_for(owner, conv, language=language, requested_slot=requested),
        text=text,
        intent=intent,
    )
    if guarded:  # the ConsequenceGuard keeps the held-back intent second in the ranking
        tracker.latest_message["intent_ranking"] = [
            {"name": CONFIRM_INTENT, "confidence": 0.7},
            {"name": guarded, "confidence": 0.7},
        ]
    return tracker


OFF_TOPIC = [
    # (slot, validator, text, intent, language, guarded intent)
    (
        "promise_date",
        "promise",
        "le train de samedi part à quelle heure ?",
        "out_of_scope",
        "fr",
        "",
    ),
    ("promise_date", "promise", "is the saturday train on time", "nlu_fallback", "en", ""),
    ("promise_amount", "promise", "2 pizzas et un coca svp", "out_of_scope", "fr", ""),
    ("promise_amount", "promise", "add 2 gb to my phone plan", "nlu_fallback", "en", ""),
    ("paid_date", "paid", "il fait beau hier ?", "nlu_fallback", "fr", ""),
    ("payment_reference", "paid", "quelle heure est-il ?", "nlu_fallback", "fr", ""),
    ("payment_reference", "paid", "what's the weather like", "out_of_scope", "en", ""),
    ("dispute_details", "dispute", "tu connais une bonne pizzeria ?", "out_of_scope", "fr", ""),
    ("dispute_reason", "dispute", "who won the game last night", "nlu_fallback", "en", ""),
    ("plan_installments", "plan", "3 places pour le match", CONFIRM_INTENT, "fr", "stop_contact"),
    ("plan_frequency", "plan", "every week at the gym", CONFIRM_INTENT, "en", "dispute_debt"),
    # "everything" is the whole balance only as a short answer
    (
        "promise_amount",
        "promise",
        "everything is fine with my order thanks",
        "out_of_scope",
        "en",
        "",
    ),
    # a debtor back later greets a form still waiting: asked again, no "I did not understand"
    ("plan_frequency", "plan", "hi", "greet", "en", ""),
    ("promise_date", "promise", "bonjour", "greet", "fr", ""),
]
VALIDATORS: dict[str, Any] = {
    "promise": ValidatePromiseForm,
    "paid": ValidateAlreadyPaidForm,
    "dispute": ValidateDisputeForm,
    "plan": ValidatePlanForm,
}


@pytest.mark.parametrize(("slot", "form", "text", "intent", "language", "guarded"), OFF_TOPIC)
def test_off_topic_message_fills_no_slot(
    dispatcher: CollectingDispatcher,
    debtor_setup: Setup,
    slot: str,
    form: str,
    text: str,
    intent: str,
    language: str,
    guarded: str,
) -> None:
    tracker = _tracker(debtor_setup, text, intent, language, slot, guarded)
    validate = getattr(VALIDATORS[form](), f"validate_{slot}")
    assert validate(text, dispatcher, tracker, {}) == {slot: None}
    assert dispatcher.messages == []  # no "invalid answer": the form simply asks again


@pytest.mark.parametrize(
    ("text", "intent", "language"),
    [
        ("c'est quoi ton film préféré ?", "out_of_scope", "fr"),
        ("tell me a joke", "nlu_fallback", "en"),
    ],
)
def test_off_topic_message_costs_no_identity_attempt(
    dispatcher: CollectingDispatcher, debtor_setup: Setup, text: str, intent: str, language: str
) -> None:
    tracker = _tracker(debtor_setup, text, intent, language, "identity_answer")
    result = ValidateIdentityForm().validate_identity_answer(text, dispatcher, tracker, {})
    assert result == {"identity_answer": None}


@pytest.mark.parametrize(
    ("slot", "text", "intent", "language", "expected"),
    [
        ("promise_amount", "99,99 €", "nlu_fallback", "fr", 9999),  # a bare figure DIET fell on
        (
            "promise_amount",
            "€42.50",
            "out_of_scope",
            "en",
            4250,
        ),  # the account is in euros: "$42.50" is asked again (test_promise_currency)
        ("promise_amount", "quarante-deux euros", "inform", "fr", 4200),
        # simulator finding: "everything" at "how much?" fell back and the form asked forever
        ("promise_amount", "everything", "nlu_fallback", "en", 30_000),
        ("promise_amount", "la totalité", "nlu_fallback", "fr", 30_000),
        ("promise_amount", "150 euros stp", "out_of_scope", "fr", 15_000),
        ("promise_date", "dans 10 jours", "inform", "fr", "2026-12-15"),
        ("promise_date", "in 10 days", "inform", "en", "2026-12-15"),
    ],
)
def test_unusual_answers_are_still_taken(
    dispatcher: CollectingDispatcher,
    debtor_setup: Setup,
    monkeypatch: pytest.MonkeyPatch,
    slot: str,
    text: str,
    intent: str,
    language: str,
    expected: object,
) -> None:
    from datetime import date

    monkeypatch.setattr("actions.promises.tracker_today", lambda tracker: date(2026, 12, 5))
    tracker = _tracker(debtor_setup, text, intent, language, slot)
    validate = getattr(ValidatePromiseForm(), f"validate_{slot}")
    assert validate(text, dispatcher, tracker, {}) == {slot: expected}


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("je n'en ai pas", "nlu_fallback"),
        ("j'en ai pas", "deny"),
        ("i don't have one", "out_of_scope"),
    ],
)
def test_no_reference_is_an_answer_whatever_the_nlu_read(
    dispatcher: CollectingDispatcher, debtor_setup: Setup, text: str, intent: str
) -> None:
    """Found by the e2e suite after a retrain: "je n'en ai pas" fell back, the reference question
    came again, and the next detail the debtor gave ("par virement") became the reference."""
    tracker = _tracker(debtor_setup, text, intent, "fr", "payment_reference")
    result = ValidateAlreadyPaidForm().validate_payment_reference(text, dispatcher, tracker, {})
    assert result == {"payment_reference": "unknown"}


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [("vendredi prochain", "fr", "2026-12-11"), ("next friday", "en", "2026-12-11")],
)
def test_weak_reading_of_the_forms_own_intent_is_an_answer(
    dispatcher: CollectingDispatcher,
    debtor_setup: Setup,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    language: str,
    expected: str,
) -> None:
    """'vendredi prochain' read as a weak promise_to_pay in the promise form: an answer in context."""
    from datetime import date

    monkeypatch.setattr("actions.promises.tracker_today", lambda tracker: date(2026, 12, 5))
    tracker = _tracker(
        debtor_setup, text, CONFIRM_INTENT, language, "promise_date", "promise_to_pay"
    )
    result = ValidatePromiseForm().validate_promise_date(text, dispatcher, tracker, {})
    assert result == {"promise_date": expected}


def test_not_an_answer_reads_the_labels() -> None:
    def tracker(intent: str, text: str = "bla", ranking: list[str] | None = None) -> Tracker:
        t = make_tracker(text=text, intent=intent)
        if ranking is not None:
            t.latest_message["intent_ranking"] = [{"name": n} for n in ranking]
        return t

    assert not_an_answer(tracker("out_of_scope"))
    assert not_an_answer(tracker("nlu_fallback"))
    assert not not_an_answer(tracker("inform"))
    assert not not_an_answer(tracker("promise_to_pay"))
    assert not_an_answer(tracker(CONFIRM_INTENT, ranking=[CONFIRM_INTENT, "stop_contact"]))
    assert not_an_answer(tracker(CONFIRM_INTENT, ranking=[CONFIRM_INTENT]))  # nothing underneath
    guarded = tracker(CONFIRM_INTENT, ranking=[CONFIRM_INTENT, "nlu_fallback", "already_paid"])
    assert not not_an_answer(guarded, "already_paid")
    assert not not_an_answer(tracker("nlu_fallback", text="12/03/1985"))


def _run(form: Any, tracker: Tracker, dispatcher: CollectingDispatcher) -> list[dict[str, Any]]:
    import asyncio

    domain = {"forms": {form.name().removeprefix("validate_"): {"required_slots": []}}}
    return asyncio.run(form.run(dispatcher, tracker, domain))


@pytest.mark.parametrize(
    ("form", "slot", "text", "language", "guarded"),
    [
        ("promise", "promise_date", "ne me dérangez plus", "fr", "stop_contact"),
        ("promise", "promise_amount", "this is not my number", "en", "wrong_person"),
        ("paid", "payment_reference", "je conteste cette facture", "fr", "dispute_debt"),
        ("paid", "paid_date", "leave me alone", "en", "stop_contact"),
        ("dispute", "dispute_details", "c'est pas moi", "fr", "wrong_person"),
        ("dispute", "dispute_reason", "i already paid it", "en", "already_paid"),
    ],
)
def test_a_weak_request_of_another_kind_leaves_the_form_and_is_asked_about(
    dispatcher: CollectingDispatcher,
    debtor_setup: Setup,
    form: str,
    slot: str,
    text: str,
    language: str,
    guarded: str,
) -> None:
    """Simulator finding: a weak opt-out in the middle of the promise form was "not an answer",
    the form asked its question again and the opt-out was never heard (in the dispute form it
    became the description). The form now ends, the slot the message was taken for is emptied,
    and the confirmation question follows; "yes" then carries the request out."""
    tracker = _tracker(debtor_setup, text, CONFIRM_INTENT, language, slot, guarded)
    events = _run(VALIDATORS[form](), tracker, dispatcher)
    assert {"event": "slot", "name": slot, "value": None, "timestamp": None} in events
    assert events[-2:] == [
        {"event": "active_loop", "name": None, "timestamp": None},
        {"event": "followup", "name": "action_ask_confirmation", "timestamp": None},
    ]
    assert dispatcher.messages == []  # the question is action_ask_confirmation's


@pytest.mark.parametrize(
    ("form", "text", "intent", "guarded"),
    [
        ("promise", "vendredi prochain", CONFIRM_INTENT, "promise_to_pay"),  # its own intent
        ("paid", "oui", CONFIRM_INTENT, "affirm"),  # a weak yes answers a question
        ("dispute", "ne me dérangez plus", "stop_contact", ""),  # strong: the rules decide
        ("promise", "vendredi", "inform", ""),
    ],
)
def test_answers_and_strong_requests_stay_with_the_form(
    dispatcher: CollectingDispatcher,
    debtor_setup: Setup,
    form: str,
    text: str,
    intent: str,
    guarded: str,
) -> None:
    tracker = _tracker(debtor_setup, text, intent, "fr", "promise_date", guarded)
    events = _run(VALIDATORS[form](), tracker, dispatcher)
    assert not any(e.get("event") in ("active_loop", "followup") for e in events), events


@pytest.mark.parametrize(
    ("form", "slot", "text", "language"),
    [
        ("dispute", "dispute_reason", "non laissez tomber", "fr"),
        ("dispute", "dispute_reason", "no forget it", "en"),
        ("paid", "paid_date", "non en fait", "fr"),
        ("paid", "paid_date", "no actually i haven't", "en"),
    ],
)
def test_a_no_to_the_first_question_takes_the_request_back(
    dispatcher: CollectingDispatcher,
    debtor_setup: Setup,
    form: str,
    slot: str,
    text: str,
    language: str,
) -> None:
    """Simulator finding: "non laissez tomber" when the dispute form asked what was wrong was
    refused by the slot's mapping, the form was rejected and the bot said it did not understand;
    "combien je dois ?" next was a second misunderstanding, so a handoff. A "no" to the form's
    first question now ends it with the other forms' "no problem, let's leave it there"."""
    tracker = _tracker(debtor_setup, text, "deny", language, slot)
    events = _run(VALIDATORS[form](), tracker, dispatcher)
    assert {"event": "slot", "name": slot, "value": None, "timestamp": None} in events
    assert events[-2:] == [
        {"event": "active_loop", "name": None, "timestamp": None},
        {"event": "followup", "name": "action_listen", "timestamp": None},
    ]
    assert [m["response"] for m in dispatcher.messages] == ["utter_form_cancelled"]


@pytest.mark.parametrize(
    ("form", "slot", "text", "entities"),
    [
        ("dispute", "dispute_reason", "non c'est pas à moi cette facture", []),  # a reason
        ("dispute", "dispute_details", "non", []),  # nothing to add: an answer
        ("paid", "payment_reference", "non", []),  # no reference: an answer
        ("paid", "paid_date", "non je l'ai payée le 3", [{"entity": "date", "value": "le 3"}]),
    ],
)
def test_a_no_that_answers_stays_with_the_form(
    dispatcher: CollectingDispatcher,
    debtor_setup: Setup,
    form: str,
    slot: str,
    text: str,
    entities: list[dict[str, Any]],
) -> None:
    tracker = _tracker(debtor_setup, text, "deny", "fr", slot)
    tracker.latest_message["entities"] = entities
    events = _run(VALIDATORS[form](), tracker, dispatcher)
    assert not any(e.get("event") in ("active_loop", "followup") for e in events), events


@freeze_time("2026-12-07 10:00:00")
@pytest.mark.parametrize(
    ("entity", "text", "expected"),
    [
        ("fin du", "fin du mois alors", "2026-12-31"),  # DIET cut the date in pieces
        ("le", "le 15", "2026-12-15"),
        ("vendredi", "vendredi", "2026-12-11"),
    ],
)
def test_a_date_cut_in_pieces_by_the_entity_extractor_is_read_from_the_message(
    entity: str, text: str, expected: str
) -> None:
    """Simulator: "fin du mois alors" at "when can you pay?" got "I couldn't read that date"
    (the entity was "fin du"), three times in a row."""
    tracker = make_tracker({"identity_verified": True}, text=text, intent="inform")
    tracker.slots["requested_slot"] = "promise_date"
    answer = ValidatePromiseForm().validate_promise_date(
        entity, CollectingDispatcher(), tracker, {}
    )
    assert answer == {"promise_date": expected}


@pytest.mark.parametrize(
    ("text", "intent", "requested", "expected"),
    [
        ("tout", "goodbye", "promise_amount", {"promise_amount": "tout"}),
        ("everything", "nlu_fallback", "promise_amount", {"promise_amount": "everything"}),
        ("la totalité", "inform", "promise_amount", {"promise_amount": "la totalité"}),
        ("tout", "goodbye", "promise_date", {}),  # not the question asked
        ("c'est tout merci au revoir", "goodbye", "promise_amount", {}),  # a goodbye indeed
    ],
)
def test_the_whole_balance_is_the_amount_whatever_the_label(
    dispatcher: CollectingDispatcher, text: str, intent: str, requested: str, expected: dict
) -> None:
    """A lone "tout" to "how much?" read as goodbye by a CI model draw ended the promise form on
    "Merci, au revoir" (the slot's mapping refuses a goodbye): the form extracts it itself."""
    tracker = make_tracker({"requested_slot": requested}, text=text, intent=intent)
    assert ValidatePromiseForm().extract_promise_amount(dispatcher, tracker, {}) == expected
