"""Simulator findings of 2026-12-07 (evening), replayed through the signed SMS webhook against the
real processes (CI model):

- a question about the late fees inside the promise form ("c quoi les frais de retard deja")
  was taken as the promised amount ("I couldn't read that amount"); now answered, then the form
  asks again;
- "thats a lot" after the balance was read as goodbye ("Thank you, goodbye") and "ah ok c
  beaucoup la" as thanks ("Avec plaisir"); "whats the oldest invoice" as a request for a copy
  (a task for the team to send one). None holds a word of the intent DIET gave it
  (bot/components/evidence.py, topic_relabel);
- the debtor who explains more of their reason while the plan offer waits got the same two
  messages again, word for word;
- "when is the first payment?" right after agreeing a plan was read as a promise (full
  confidence: a payment word and "the first" as a date) and started the promise form;
- "forget the dispute" (dispute_debt 0.99) was taken as a new dispute's reason, and "can i get
  a payment link then" as a dispute's description: disputes nobody meant, dunning paused;
- "ok et du coup vous arretez les relances?" (stop_contact 0.94, with its word) opted the
  debtor out of every SMS for a question.

Own debtors (+33639987061..., +12025557061...), so nothing depends on the order of modules.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from relance.db.models import (
    Contact,
    Conversation,
    Debtor,
    Dispute,
    Handoff,
    PaymentPlan,
    Promise,
    Task,
)
from relance.nlg.formatting import long_date, money

from .conftest import RunningStack
from .test_conversation_never_breaks import _add_debtor, _say, _session, _wording

# They prove what the assistant understands and answers, not the database: the SQLite pass only (`once`), as CI has to stay short.
pytestmark = [pytest.mark.e2e, pytest.mark.once, pytest.mark.timeout(1200)]


def _converse(
    stack: RunningStack,
    tag: str,
    language: str,
    phone: str,
    postcode: str,
    amount: str,
    turns: list[str],
) -> tuple[Debtor, list[list[str]]]:
    """A new consumer debtor owing `amount` says `turns`; the bot's replies to each."""
    debtor = _add_debtor(
        stack, f"C-{tag.upper()}", phone, language=language, postcode=postcode, amount=amount
    )
    return debtor, [_say(stack, phone, text, tag, n) for n, text in enumerate(turns)]


@pytest.mark.parametrize(
    ("language", "phone", "postcode", "turns"),
    [
        (
            "fr",
            "+33639987061",
            "75021",
            [
                "combien je dois ?",
                "75021",
                "je vous paierai le 20",
                "attends c quoi les frais deja",
            ],
        ),
        (
            "en",
            "+12025557061",
            "60631",
            ["how much do i owe", "60631", "i'll pay on the 20th", "wait what are the fees again"],
        ),
    ],
    ids=["fr", "en"],
)
def test_a_fees_question_inside_the_promise_form_is_answered_then_the_amount_asked(
    e2e_stack: RunningStack, language: str, phone: str, postcode: str, turns: list[str]
) -> None:
    tag = f"feesaside{language}"
    debtor, said = _converse(e2e_stack, tag, language, phone, postcode, "300.00", turns)
    # The question goes on with the balance ("... The full balance is $300.00."): its start.
    amount_question = _wording("utter_ask_promise_amount", language)
    assert said[2][-1].startswith(amount_question), said
    fees = _wording("utter_fees", language)  # a consumer: no fees are added
    assert len(said[3]) == 2 and said[3][0] == fees, said
    assert said[3][1].startswith(amount_question), said
    said.append(_say(e2e_stack, phone, "tout" if language == "fr" else "everything", tag, 9))
    with _session(e2e_stack) as session:
        promises = session.scalars(select(Promise).where(Promise.debtor_id == debtor.id)).all()
    assert [(p.amount_minor, p.promised_date.day) for p in promises] == [(30_000, 20)], said


@pytest.mark.parametrize(
    ("language", "phone", "postcode", "turns"),
    [
        (
            "fr",
            "+33639987062",
            "75022",
            [
                "combien je dois ?",
                "75022",
                "ah ok c beaucoup la",
                "et c quoi la facture la plus vieille",
            ],
        ),
        (
            "en",
            "+12025557062",
            "60632",
            ["how much do i owe", "60632", "thats a lot", "whats the oldest invoice"],
        ),
    ],
    ids=["fr", "en"],
)
def test_a_complaint_is_no_goodbye_and_a_question_no_copy_request(
    e2e_stack: RunningStack, language: str, phone: str, postcode: str, turns: list[str]
) -> None:
    tag = f"topic{language}"
    debtor, said = _converse(e2e_stack, tag, language, phone, postcode, "420.00", turns)
    pleasantries = {
        _wording("utter_goodbye", language),
        _wording("utter_you_are_welcome", language),
    }
    assert not pleasantries & set(said[2]), said
    fees = _wording("utter_fees", language)
    assert fees not in said[3], said
    with _session(e2e_stack) as session:
        copies = session.scalars(
            select(Task).where(Task.debtor_id == debtor.id, Task.kind == "invoice_copy")
        ).all()
    assert copies == [], said


@pytest.mark.parametrize(
    ("language", "phone", "postcode", "turns"),
    [
        (
            "fr",
            "+33639987063",
            "75023",
            [
                "je peux pas tout payer maintenant",
                "75023",
                "la tréso est pas top en ce moment, un client nous doit de l'argent",
            ],
        ),
        (
            "en",
            "+12025557063",
            "60633",
            ["can't pay it all rn", "60633", "business is slow, a client owes us money"],
        ),
    ],
    ids=["fr", "en"],
)
def test_more_of_the_reason_is_acknowledged_not_answered_twice_word_for_word(
    e2e_stack: RunningStack, language: str, phone: str, postcode: str, turns: list[str]
) -> None:
    tag = f"noted{language}"
    _, said = _converse(e2e_stack, tag, language, phone, postcode, "900.00", turns)
    empathy = _wording("utter_cannot_pay_empathy", language)
    offer = _wording("utter_offer_plan", language)
    assert empathy in said[0] and said[1][-1] == offer, said
    assert said[2] == [_wording("utter_cannot_pay_noted", language), offer], said


@pytest.mark.parametrize(
    ("language", "phone", "postcode", "turns", "question"),
    [
        (
            "fr",
            "+33639987064",
            "75024",
            ["je ne peux pas payer", "75024", "en 3 fois par mois", "oui"],
            "c'est quand le prochain paiement",
        ),
        (
            "en",
            "+12025557064",
            "60634",
            ["i can't pay right now", "60634", "3 monthly payments", "yes"],
            "great, when is the first payment?",
        ),
    ],
    ids=["fr", "en"],
)
def test_when_is_the_first_payment_is_a_question_not_a_promise(
    e2e_stack: RunningStack,
    language: str,
    phone: str,
    postcode: str,
    turns: list[str],
    question: str,
) -> None:
    tag = f"whenq{language}"
    debtor, said = _converse(e2e_stack, tag, language, phone, postcode, "600.00", turns)
    with _session(e2e_stack) as session:
        [plan] = session.scalars(select(PaymentPlan).where(PaymentPlan.debtor_id == debtor.id))
        first = min(plan.installments, key=lambda i: (i.due_date, i.seq))
        amount, due = first.amount_minor, first.due_date
    replies = _say(e2e_stack, phone, question, tag, len(turns))
    answer = " ".join(replies)
    assert money(amount, "EUR", language) in answer and long_date(due, language) in answer, said
    assert not any("?" in reply for reply in replies), replies  # no promise question
    with _session(e2e_stack) as session:
        promises = session.scalars(select(Promise).where(Promise.debtor_id == debtor.id)).all()
    assert promises == [], replies


@pytest.mark.parametrize(
    ("language", "phone", "postcode", "turns"),
    [
        (
            "fr",
            "+33639987065",
            "75025",
            ["je conteste cette facture", "75025", "oubliez la contestation"],
        ),
        ("en", "+12025557065", "60635", ["i dispute this invoice", "60635", "forget the dispute"]),
    ],
    ids=["fr", "en"],
)
def test_a_dispute_taken_back_in_words_registers_nothing(
    e2e_stack: RunningStack, language: str, phone: str, postcode: str, turns: list[str]
) -> None:
    tag = f"dwd{language}"
    debtor, said = _converse(e2e_stack, tag, language, phone, postcode, "380.00", turns)
    assert said[1][-1] == _wording("utter_ask_dispute_reason", language), said
    assert said[2] == [_wording("utter_form_cancelled", language)], said
    with _session(e2e_stack) as session:
        assert session.scalars(select(Dispute).where(Dispute.debtor_id == debtor.id)).all() == []


@pytest.mark.parametrize(
    ("language", "phone", "postcode", "turns"),
    [
        (
            "fr",
            "+33639987066",
            "75026",
            ["je conteste cette facture", "75026", "bon ok envoyez moi un lien de paiement"],
        ),
        (
            "en",
            "+12025557066",
            "60636",
            ["i dispute this invoice", "60636", "can i get a payment link then"],
        ),
    ],
    ids=["fr", "en"],
)
def test_a_payment_link_asked_for_in_the_dispute_form_is_sent_no_dispute_made(
    e2e_stack: RunningStack, language: str, phone: str, postcode: str, turns: list[str]
) -> None:
    tag = f"dlk{language}"
    debtor, said = _converse(e2e_stack, tag, language, phone, postcode, "390.00", turns)
    assert said[1][-1] == _wording("utter_ask_dispute_reason", language), said
    assert "/pay/" in " ".join(said[2]), said
    with _session(e2e_stack) as session:
        assert session.scalars(select(Dispute).where(Dispute.debtor_id == debtor.id)).all() == []


@pytest.mark.parametrize(
    ("language", "phone", "postcode", "turns"),
    [
        (
            "fr",
            "+33639987067",
            "75027",
            ["combien je dois ?", "75027", "ok et du coup vous arretez les relances?"],
        ),
        (
            "en",
            "+12025557067",
            "60637",
            ["how much do i owe", "60637", "ok so are you going to stop the reminders now?"],
        ),
    ],
    ids=["fr", "en"],
)
def test_a_question_about_stopping_is_confirmed_not_an_opt_out(
    e2e_stack: RunningStack, language: str, phone: str, postcode: str, turns: list[str]
) -> None:
    tag = f"stopq{language}"
    debtor, said = _converse(e2e_stack, tag, language, phone, postcode, "370.00", turns)
    assert said[2] == [_wording("utter_confirm_stop_contact", language)], said
    with _session(e2e_stack) as session:
        contacts = session.scalars(select(Contact).where(Contact.debtor_id == debtor.id)).all()
    assert [c.opted_out_at for c in contacts if c.channel == "sms"] == [None], said


@pytest.mark.parametrize(
    ("language", "phone", "postcode", "turns"),
    [
        (
            "fr",
            "+33639987068",
            "75028",
            [
                "bonjour",
                "c'est pas moi",
                "ah si pardon c'est bien moi",
                "75028",
                "combien je dois ?",
            ],
        ),
        (
            "en",
            "+12025557068",
            "60638",
            ["hello", "wrong number", "oh wait sorry it is me", "60638", "how much do i owe"],
        ),
    ],
    ids=["fr", "en"],
)
def test_wrong_person_taken_back_with_the_right_postcode_makes_the_number_reachable(
    e2e_stack: RunningStack, language: str, phone: str, postcode: str, turns: list[str]
) -> None:
    tag = f"wpback{language}"
    debtor, said = _converse(e2e_stack, tag, language, phone, postcode, "360.00", turns)
    assert "360" in " ".join(said[4]), said  # verified: the balance is said
    with _session(e2e_stack) as session:
        [contact] = session.scalars(
            select(Contact).where(Contact.debtor_id == debtor.id, Contact.channel == "sms")
        )
    assert contact.status == "ok", said


@pytest.mark.parametrize(
    ("language", "phone", "postcode", "turns"),
    [
        (
            "fr",
            "+33639987069",
            "75029",
            ["j'ai déjà payé", "75029", "par virement", "je sais plus", "non"],
        ),
        (
            "en",
            "+12025557069",
            "60639",
            ["i already paid", "60639", "by bank transfer", "i don't remember", "no"],
        ),
    ],
    ids=["fr", "en"],
)
def test_a_debtor_who_cannot_say_when_they_paid_is_not_asked_forever(
    e2e_stack: RunningStack, language: str, phone: str, postcode: str, turns: list[str]
) -> None:
    """Simulator: "Merci de nous le signaler. À quelle date avez-vous payé ?" seven times in a
    row. Asked again, the question says an approximate date will do; "je sais plus" is an
    answer, and the report goes on to the reference, then is recorded without a date."""
    tag = f"nodate{language}"
    debtor, said = _converse(e2e_stack, tag, language, phone, postcode, "340.00", turns)
    assert said[1][-1] == _wording("utter_ask_paid_date", language), said
    assert said[2][-1] == _wording("utter_ask_paid_date_again", language), said
    assert said[3][-1] == _wording("utter_ask_payment_reference", language), said
    recorded = " ".join(said[4])
    assert recorded.startswith(
        "Merci. Nous vérifions votre paiement et"
        if language == "fr"
        else "Thank you. We're checking your payment and"
    ), said
    with _session(e2e_stack) as session:
        [task] = session.scalars(
            select(Task).where(Task.debtor_id == debtor.id, Task.kind == "reconciliation")
        )
    assert task.details["claims"][-1]["claimed_date"] is None, said


@pytest.mark.parametrize(
    ("language", "phone", "postcode", "turns"),
    [
        (
            "fr",
            "+33639987070",
            "75030",
            ["jdois combien", "75030", "ouf c chaud", "c quoi la facture la plus ancienne"],
        ),
        (
            "en",
            "+12025557070",
            "60640",
            ["how much do i owe", "60640", "oof thats rough", "which bill is the oldest?"],
        ),
    ],
    ids=["fr", "en"],
)
def test_a_question_about_an_invoice_after_a_misunderstanding_is_answered_not_handed_off(
    e2e_stack: RunningStack, language: str, phone: str, postcode: str, turns: list[str]
) -> None:
    """Simulator: "ouf c chaud" was not understood, then "c quoi la facture la plus ancienne"
    (ambiguous to DIET between fees and copy) was the second misunderstanding in a row: handed
    to a collector, and every later message waited for one."""
    tag = f"invq{language}"
    debtor, said = _converse(e2e_stack, tag, language, phone, postcode, "330.00", turns)
    assert "F-C-INVQ" in " ".join(said[3]), said  # the invoice is named: the details answer
    with _session(e2e_stack) as session:
        handoffs = session.scalars(
            select(Handoff).join(Conversation).where(Conversation.debtor_id == debtor.id)
        ).all()
    assert handoffs == [], said
