"""Identity form validation, its question, and wrong person."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.identity import (
    ActionAskIdentityAnswer,
    ActionExplainIdentityCheck,
    ActionMarkWrongPerson,
    ValidateIdentityForm,
)
from relance.db.models import AuditEvent, Contact, Conversation, Debtor
from relance.nlg.renderer import render
from relance.settings import get_settings
from tests.actions.conftest import make_tracker, responses, slots_for
from tests.factories import make_conversation, make_debtor, make_invoice
from tests.relance.nlg.test_every_template import TEMPLATES
from tests.support.identity_attacks import postcode_list_sms


def test_right_postcode_verifies(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    tracker = make_tracker(slots_for(owner, conv, identity_verified=False))
    result = ValidateIdentityForm().validate_identity_answer("75 011", dispatcher, tracker, {})
    assert result == {
        "identity_answer": "checked",
        "identity_verified": True,
        "identity_attempts": 0,
    }
    db.refresh(conv)
    assert conv.identity_verified_at is not None


def test_spoken_postcode_verifies(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    tracker = make_tracker(slots_for(owner, conv, identity_verified=False))
    result = ValidateIdentityForm().validate_identity_answer(
        "sept cinq zéro un un", dispatcher, tracker, {}
    )
    assert result["identity_verified"] is True


def test_wrong_answer_asks_again_then_locks(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    form = ValidateIdentityForm()
    first = form.validate_identity_answer(
        "69003", dispatcher, make_tracker(slots_for(owner, conv, identity_verified=False)), {}
    )
    assert first == {"identity_answer": None, "identity_attempts": 1}
    assert responses(dispatcher) == ["utter_identity_mismatch"]
    assert dispatcher.messages[0]["attempts_left"] == 2
    last = form.validate_identity_answer(
        "69003",
        dispatcher,
        make_tracker(slots_for(owner, conv, identity_verified=False, identity_attempts=2)),
        {},
    )
    assert last == {"identity_answer": "failed", "identity_verified": False, "identity_attempts": 3}
    failures = db.scalars(select(AuditEvent).where(AuditEvent.action == "identity.failed")).all()
    assert [f.details["locked"] for f in failures] == [False, True]


def test_unknown_debtor_never_verifies(db: Session, dispatcher) -> None:
    tracker = make_tracker({"debtor_id": None, "identity_verified": False})
    result = ValidateIdentityForm().validate_identity_answer("75011", dispatcher, tracker, {})
    assert result["identity_verified"] is False and result["identity_answer"] == "failed"


def test_question_names_the_configured_check(dispatcher, settings) -> None:
    ActionAskIdentityAnswer().run(dispatcher, make_tracker({"identity_attempts": 1}), {})
    [message] = dispatcher.messages
    assert message["response"] == "utter_ask_identity_answer"
    assert message["identity_kind"] == "postcode" and message["attempts_left"] == 2


def test_wrong_person_flags_the_contact(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    events = ActionMarkWrongPerson().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    contact = db.scalars(select(Contact).where(Contact.debtor_id == owner.id)).one()
    assert contact.status == "wrong_person"
    assert {
        "event": "slot",
        "name": "identity_verified",
        "value": False,
        "timestamp": None,
    } in events
    assert dispatcher.messages == []  # discloses nothing


def test_the_right_postcode_after_saying_wrong_person_makes_the_number_reachable_again(
    db: Session, dispatcher, debtor_setup
) -> None:
    # Simulator: "c pas moi…" flagged the number; "ah si pardon c'est bien moi… 31000" and the
    # right postcode verified the debtor, but the number stayed flagged: no reminder ever again.
    owner, conv = debtor_setup
    ActionMarkWrongPerson().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    tracker = make_tracker(slots_for(owner, conv, identity_verified=False))
    result = ValidateIdentityForm().validate_identity_answer("75011", dispatcher, tracker, {})
    assert result["identity_verified"] is True
    contact = db.scalars(select(Contact).where(Contact.debtor_id == owner.id)).one()
    db.refresh(contact)
    assert contact.status == "ok" and contact.reachable
    trail = db.scalars(
        select(AuditEvent.action).where(AuditEvent.debtor_id == owner.id).order_by(AuditEvent.id)
    ).all()
    assert trail[-3:] == [
        "contact.wrong_person",
        "contact.wrong_person_withdrawn",
        "identity.verified",
    ]


def test_a_wrong_postcode_after_saying_wrong_person_keeps_the_number_flagged(
    db: Session, dispatcher, debtor_setup
) -> None:
    owner, conv = debtor_setup
    ActionMarkWrongPerson().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    tracker = make_tracker(slots_for(owner, conv, identity_verified=False))
    result = ValidateIdentityForm().validate_identity_answer("13001", dispatcher, tracker, {})
    assert not result.get("identity_verified")
    contact = db.scalars(select(Contact).where(Contact.debtor_id == owner.id)).one()
    db.refresh(contact)
    assert contact.status == "wrong_person"


def test_one_sms_listing_240_postcodes_does_not_verify(
    db: Session, dispatcher, debtor_setup
) -> None:
    """The attack of issue 17.1: it verified every French demo debtor. Each postcode in the list
    is one attempt; the message locks the check and hands off, nothing is disclosed."""
    owner, conv = debtor_setup
    sms = postcode_list_sms(", ")
    assert len(sms) > 1000
    result = ValidateIdentityForm().validate_identity_answer(
        sms, dispatcher, make_tracker(slots_for(owner, conv, identity_verified=False)), {}
    )
    assert result == {
        "identity_answer": "failed",
        "identity_verified": False,
        "identity_attempts": 3,
    }
    db.refresh(conv)
    assert conv.identity_verified_at is None
    [failure] = db.scalars(select(AuditEvent).where(AuditEvent.action == "identity.failed")).all()
    assert failure.details["locked"] is True and failure.details["candidates"] == 240


def test_postcodes_separated_by_spaces_are_one_wrong_answer(
    db: Session, dispatcher, debtor_setup
) -> None:
    owner, conv = debtor_setup
    result = ValidateIdentityForm().validate_identity_answer(
        postcode_list_sms(" "),
        dispatcher,
        make_tracker(slots_for(owner, conv, identity_verified=False)),
        {},
    )
    assert result == {"identity_answer": None, "identity_attempts": 1}
    assert responses(dispatcher) == ["utter_identity_mismatch"]


def test_sequential_customer_numbers_do_not_verify(
    db: Session, dispatcher, debtor_setup, monkeypatch
) -> None:
    """C-FR-001 … C-FR-177 in one SMS verified every debtor under the customer-number check."""
    monkeypatch.setenv("IDENTITY_CHECK", "customer_number")
    get_settings.cache_clear()
    owner, conv = debtor_setup
    owner.customer_number = "C-FR-042"
    db.flush()
    form = ValidateIdentityForm()
    for separator in (", ", " ", "\n"):
        sms = separator.join(f"C-FR-{n:03d}" for n in range(1, 178))
        result = form.validate_identity_answer(
            sms, dispatcher, make_tracker(slots_for(owner, conv, identity_verified=False)), {}
        )
        assert result.get("identity_verified") is not True, separator
    # One guess a message: three messages, three attempts, then the check is locked.
    attempts = 0
    for n in (1, 2, 3, 42):
        result = form.validate_identity_answer(
            f"C-FR-{n:03d}",
            dispatcher,
            make_tracker(
                slots_for(owner, conv, identity_verified=False, identity_attempts=attempts)
            ),
            {},
        )
        attempts = result.get("identity_attempts", attempts)
        if result["identity_answer"] == "failed":
            break
    assert result == {
        "identity_answer": "failed",
        "identity_verified": False,
        "identity_attempts": 3,
    }
    assert n == 3  # the right number, fourth, is never tried


def test_customer_number_answer_still_verifies(
    db: Session, dispatcher, debtor_setup, monkeypatch
) -> None:
    monkeypatch.setenv("IDENTITY_CHECK", "customer_number")
    get_settings.cache_clear()
    owner, conv = debtor_setup
    owner.customer_number = "C-FR-042-7315"
    db.flush()
    for answer in ("C-FR-042-7315", "mon numéro client est le c fr 042 7315"):
        result = ValidateIdentityForm().validate_identity_answer(
            answer, dispatcher, make_tracker(slots_for(owner, conv, identity_verified=False)), {}
        )
        assert result["identity_verified"] is True, answer


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("donnez-moi le détail de ma facture", "fr"),
        ("pourquoi vous me demandez ça ?", "fr"),
        ("why do you need that?", "en"),
    ],
)
def test_a_question_during_the_check_is_not_a_wrong_attempt(
    db: Session, dispatcher, debtor_setup, text: str, language: str
) -> None:
    """Issue 16.6: the question is explained, the attempts are unchanged, nothing is recorded."""
    owner, conv = debtor_setup
    result = ValidateIdentityForm().validate_identity_answer(
        text,
        dispatcher,
        make_tracker(
            slots_for(owner, conv, identity_verified=False, identity_attempts=2, language=language)
        ),
        {},
    )
    assert result == {"identity_answer": None}
    assert responses(dispatcher) == ["utter_identity_why"]
    assert dispatcher.messages[0]["identity_kind"] == "postcode"
    assert db.scalars(select(AuditEvent).where(AuditEvent.action == "identity.failed")).all() == []


@pytest.mark.parametrize("intent", ["out_of_scope", "nlu_fallback"])
def test_a_message_read_as_off_topic_during_the_check_gets_the_reason(
    db: Session, dispatcher, debtor_setup, intent: str
) -> None:
    """Simulator finding: "why do you need that" (read as off-topic) got the bare question again;
    it gets the reason first, and still costs no attempt."""
    owner, conv = debtor_setup
    tracker = make_tracker(
        slots_for(owner, conv, identity_verified=False, language="en"),
        text="why do you need that",
        intent=intent,
    )
    result = ValidateIdentityForm().validate_identity_answer(
        "why do you need that", dispatcher, tracker, {}
    )
    assert result == {"identity_answer": None}
    assert responses(dispatcher) == ["utter_identity_why"]
    assert db.scalars(select(AuditEvent).where(AuditEvent.action == "identity.failed")).all() == []


def test_why_the_check_is_explained_and_never_an_attempt(
    db: Session, dispatcher, debtor_setup
) -> None:
    """Simulator finding: "pk vous voulez mon code postal" was read as a payment-link request
    (0.95). It has its own intent now: outside the form, the reason; inside, the reason and the
    question again, with no attempt spent."""
    from actions._common import not_an_answer
    from actions.identity import ActionExplainIdentityCheck

    owner, conv = debtor_setup
    tracker = make_tracker(
        slots_for(owner, conv, identity_verified=False),
        text="pk vous voulez mon code postal",
        intent="ask_why_identity",
    )
    ActionExplainIdentityCheck().run(dispatcher, tracker, {})
    assert responses(dispatcher) == ["utter_identity_why"]
    assert not_an_answer(tracker)
    result = ValidateIdentityForm().validate_identity_answer(
        "pk vous voulez mon code postal", dispatcher, tracker, {}
    )
    assert result == {"identity_answer": None}
    assert db.scalars(select(AuditEvent).where(AuditEvent.action == "identity.failed")).all() == []


# What the debtor asked before the check, and the message that answers the check.
IDENTITY_DOMAIN: dict[str, Any] = {
    "forms": {"identity_form": {"required_slots": ["identity_answer"]}}
}


def _answer_turn(
    setup: tuple[Debtor, Conversation], text: str, intent: str, confidence: float, read_as: str
) -> Tracker:
    """The tracker validate_identity_form gets: the plan asked for before the check, then this
    message, which the from_intent mapping read as `read_as` (pending_request rewritten)."""
    owner, conv = setup
    tracker = make_tracker(
        slots_for(
            owner,
            conv,
            identity_verified=False,
            requested_slot="identity_answer",
            identity_answer=text,
            pending_request=read_as,
        ),
        text=text,
        intent=intent,
        events=[
            {"event": "slot", "name": "pending_request", "value": "payment_plan"},
            {"event": "action", "name": "identity_form"},
            {"event": "user", "text": text},
            {"event": "slot", "name": "pending_request", "value": read_as},
            {"event": "slot", "name": "identity_answer", "value": text},
        ],
    )
    tracker.latest_message["intent"]["confidence"] = confidence
    tracker.active_loop = {"name": "identity_form"}
    return tracker


@pytest.mark.parametrize(
    ("text", "intent", "confidence"),
    [
        ("attendez je cherche... 75011", "ask_balance", 0.52),  # an aside with the answer
        ("75011", "promise_to_pay", 0.97),  # a bare figure is the answer, whatever DIET says
    ],
)
def test_a_weak_reading_during_the_check_keeps_the_request_made_before(
    dispatcher: CollectingDispatcher,
    debtor_setup: tuple[Debtor, Conversation],
    text: str,
    intent: str,
    confidence: float,
) -> None:
    read_as = {"ask_balance": "balance", "promise_to_pay": "promise"}[intent]
    tracker = _answer_turn(debtor_setup, text, intent, confidence, read_as)
    events = asyncio.run(ValidateIdentityForm().run(dispatcher, tracker, IDENTITY_DOMAIN))
    slots = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
    assert slots["identity_verified"] is True  # the postcode still counts
    assert slots["pending_request"] == "payment_plan"  # and the plan is what gets resumed


def test_a_clear_new_request_during_the_check_replaces_the_earlier_one(
    dispatcher: CollectingDispatcher, debtor_setup: tuple[Debtor, Conversation]
) -> None:
    text = "en fait envoyez moi juste le lien pour payer"
    tracker = _answer_turn(debtor_setup, text, "request_payment_link", 0.96, "payment_link")
    events = asyncio.run(ValidateIdentityForm().run(dispatcher, tracker, IDENTITY_DOMAIN))
    assert [e for e in events if e.get("name") == "pending_request"] == []  # left as read
    assert tracker.get_slot("pending_request") == "payment_link"


def _form_turn(setup: tuple[Debtor, Conversation], text: str, intent: str) -> Tracker:
    """The tracker validate_identity_form gets for `text` typed at the question when the domain's
    mappings filled nothing (its from_text mapping leaves out off-topic readings)."""
    owner, conv = setup
    tracker = make_tracker(
        slots_for(owner, conv, identity_verified=False, requested_slot="identity_answer"),
        text=text,
        intent=intent,
        events=[
            {"event": "action", "name": "identity_form"},
            {"event": "user", "text": text},
        ],
    )
    tracker.active_loop = {"name": "identity_form"}
    return tracker


def _run_form(dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any]:
    events = asyncio.run(ValidateIdentityForm().run(dispatcher, tracker, IDENTITY_DOMAIN))
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


@pytest.mark.parametrize("intent", ["out_of_scope", "goodbye", "deny", "nlu_fallback"])
def test_a_postcode_read_as_off_topic_is_still_the_answer(
    db: Session,
    dispatcher: CollectingDispatcher,
    debtor_setup: tuple[Debtor, Conversation],
    intent: str,
) -> None:
    """Seen with a retrained model: "75011" or "SW1A 1AA" read as off-topic at the question was
    not read at all, and the debtor got "I can only talk about your account"."""
    slots = _run_form(dispatcher, _form_turn(debtor_setup, "75011", intent))
    assert slots["identity_verified"] is True
    assert "utter_identity_why" not in responses(dispatcher)


def test_a_uk_postcode_read_as_off_topic_is_still_the_answer(
    db: Session, dispatcher: CollectingDispatcher
) -> None:
    owner = make_debtor(db, postcode="SW1A 1AA", segment="consumer", language="en")
    make_invoice(db, owner, amount_minor=20_000)
    conv = make_conversation(db, owner)
    slots = _run_form(dispatcher, _form_turn((owner, conv), "sw1a 1aa", "out_of_scope"))
    assert slots["identity_verified"] is True


def test_a_postcode_list_read_as_off_topic_is_read_and_locks(
    db: Session, dispatcher: CollectingDispatcher, debtor_setup: tuple[Debtor, Conversation]
) -> None:
    """The 240-postcode SMS read as off-topic was left unread: no attempt spent. It is an answer
    by its shape, so it costs what it tries: the check locks, nothing is verified."""
    _owner, conv = debtor_setup
    slots = _run_form(dispatcher, _form_turn(debtor_setup, postcode_list_sms(", "), "out_of_scope"))
    assert slots["identity_verified"] is False and slots["identity_answer"] == "failed"
    db.refresh(conv)
    assert conv.identity_verified_at is None


@pytest.mark.parametrize("text", ["mdr", "pourquoi vous voulez ça", "lol 😂", "quel temps fait-il"])
def test_a_sentence_read_as_off_topic_is_no_answer(
    db: Session,
    dispatcher: CollectingDispatcher,
    debtor_setup: tuple[Debtor, Conversation],
    text: str,
) -> None:
    """Only the shape of a postcode or reference is read whatever the intent: an off-topic
    sentence fills nothing (the form is rejected and the off-topic rule answers), costs no
    attempt, and writes no audit event."""
    slots = _run_form(dispatcher, _form_turn(debtor_setup, text, "out_of_scope"))
    assert "identity_answer" not in slots and "identity_attempts" not in slots
    assert db.scalars(select(AuditEvent).where(AuditEvent.action == "identity.failed")).all() == []


@pytest.mark.parametrize(
    ("verified", "language", "said", "not_said"),
    [
        (True, "fr", "C'est fait", "Dès que c'est confirmé"),
        (False, "fr", "Dès que c'est confirmé", "C'est fait"),
        (True, "en", "That's done", "Once it's confirmed"),
    ],
)
def test_why_the_check_after_it_passed_says_it_is_done(
    dispatcher: CollectingDispatcher,
    debtor_setup: tuple[Debtor, Conversation],
    verified: bool,
    language: str,
    said: str,
    not_said: str,
) -> None:
    """Simulator finding: "pourquoi vous me demandez ça ?" right after a correct postcode got
    "once it's confirmed, I can help", as if the answer had not been accepted."""
    owner, conv = debtor_setup
    tracker = make_tracker(slots_for(owner, conv, identity_verified=verified, language=language))
    ActionExplainIdentityCheck().run(dispatcher, tracker, {})
    message = dispatcher.messages[0]
    variables = {k: v for k, v in message.items() if k not in ("response", "json_message")}
    text = render(TEMPLATES, "utter_identity_why", language=language, variables=variables)
    assert said in text and not_said not in text


def test_a_collectors_resume_gives_no_fresh_day_of_guesses(
    db: Session, dispatcher, debtor_setup
) -> None:
    """Each resume by a collector sets the tracker's count back to 0: without a total per
    debtor, a guesser got 3 more postcodes every time (and more on the portal meanwhile). After
    the day's limit on every channel together, even the right postcode locks and hands off."""
    owner, conv = debtor_setup
    form = ValidateIdentityForm()
    limit = get_settings().identity_max_attempts
    guesses = iter(f"{n:05d}" for n in range(10000, 20000))
    for _ in range(3):  # three conversations resumed by a collector: 9 wrong postcodes
        for used in range(limit):
            tracker = make_tracker(
                slots_for(owner, conv, identity_verified=False, identity_attempts=used)
            )
            form.validate_identity_answer(next(guesses), dispatcher, tracker, {})
    fresh = make_tracker(slots_for(owner, conv, identity_verified=False, identity_attempts=0))
    right = form.validate_identity_answer("75011", dispatcher, fresh, {})
    assert right == {
        "identity_answer": "failed",
        "identity_verified": False,
        "identity_attempts": limit,
    }
    db.refresh(conv)
    assert conv.identity_verified_at is None
