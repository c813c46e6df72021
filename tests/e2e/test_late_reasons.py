"""The reason for paying late, through the signed SMS webhook and the real processes.

The debtor explains ("je suis au chômage depuis mars", "I lost my job"): the empathetic answer
comes back, and the case now holds the category, the debtor's words, when, the channel and the
inbound message. The next reminder (as the dunning dispatcher primes Rasa) ends with the plan
offer the policy puts first for a job loss, and the debtor's "yes" starts the plan negotiation.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.base import utcnow
from relance.db.models import Contact, Debtor, LatePaymentReason, Message
from relance.db.session import make_engine
from relance.rasa_client import RasaClient

from .conftest import RunningStack

pytestmark = pytest.mark.e2e

EMPATHY = {
    "fr": "je comprends que la période puisse être difficile",
    "en": "I understand this can be a difficult time",
}
PLAN_OFFER = {"fr": "payer en plusieurs fois vous aiderait", "en": "spreading the payment"}
HOW_MANY = {"fr": "En combien de fois", "en": "In how many payments"}


def _replies(response_text: str) -> list[str]:
    root = ET.fromstring(response_text)
    return [(m.text or "").strip() for m in root.iter("Message")]


@pytest.mark.parametrize(
    ("phone", "postcode", "reason", "yes", "language"),
    [
        # demo debtors used by no other e2e test
        ("+33639980006", "31000", "je suis au chômage depuis mars", "oui", "fr"),
        ("+12025550106", "98101", "I lost my job", "yes", "en"),
    ],
    ids=["french", "english"],
)
def test_reason_recorded_shown_and_the_next_reminder_offers_a_plan_first(
    e2e_stack: RunningStack, phone: str, postcode: str, reason: str, yes: str, language: str
) -> None:
    def say(text: str, n: int) -> str:
        response = e2e_stack.signed_sms(phone, text, sid=f"SMlate{language}{n:026d}")
        assert response.status_code == 200, response.text
        answers = _replies(response.text)
        assert answers, f"{text!r} got no answer"
        return " ".join(answers)

    before = utcnow()
    answer = say(reason, 0)
    assert EMPATHY[language] in answer, answer
    answer = say(postcode, 1)  # the identity check the difficulty waited for, then the offer
    assert PLAN_OFFER[language] in answer, answer

    engine = make_engine(e2e_stack.env["DATABASE_URL"])
    with Session(engine) as session:
        debtor = session.scalars(
            select(Debtor).join(Contact).where(Contact.address == phone, Contact.channel == "sms")
        ).one()
        inbound = session.scalars(
            select(Message).where(Message.provider_id == f"SMlate{language}{0:026d}")
        ).one()
        [recorded] = session.scalars(
            select(LatePaymentReason).where(LatePaymentReason.debtor_id == debtor.id)
        ).all()
        assert (recorded.category, recorded.words, recorded.channel) == ("job_loss", reason, "sms")
        assert recorded.message_id == inbound.id and recorded.language == language
        assert before <= recorded.created_at <= utcnow()
        sender = f"debtor-{debtor.id}"
    engine.dispose()

    # The dunning dispatcher's call: the reminder ends with the plan offer (policy plan_first).
    rasa = RasaClient(e2e_stack.env["RASA_URL"], e2e_stack.env["RASA_AUTH_TOKEN"], timeout=60)
    try:
        reminder = [
            m.text
            for m in rasa.trigger_intent(sender, "EXTERNAL_reminder", {"stage": "firm"})
            if m.text
        ]
    finally:
        rasa.close()
    assert len(reminder) == 2 and PLAN_OFFER[language] in reminder[1], reminder
    assert HOW_MANY[language] in say(yes, 2)


@pytest.mark.parametrize(
    ("phone", "postcode", "said", "category", "language"),
    [
        ("+33639980018", "37000", "j'ai oublié de payer", "oversight", "fr"),
        ("+12025550105", "78701", "I never got the invoice", "not_received", "en"),
    ],
    ids=["french-forgot", "english-not-received"],
)
def test_a_reason_said_before_the_identity_check_is_recorded_after_it(
    e2e_stack: RunningStack, phone: str, postcode: str, said: str, category: str, language: str
) -> None:
    for n, text in enumerate((said, postcode)):
        response = e2e_stack.signed_sms(phone, text, sid=f"SMwait{language}{n:026d}")
        assert response.status_code == 200 and _replies(response.text), response.text
    engine = make_engine(e2e_stack.env["DATABASE_URL"])
    with Session(engine) as session:
        debtor = session.scalars(
            select(Debtor).join(Contact).where(Contact.address == phone, Contact.channel == "sms")
        ).one()
        [recorded] = session.scalars(
            select(LatePaymentReason).where(LatePaymentReason.debtor_id == debtor.id)
        ).all()
        first = session.scalars(
            select(Message).where(Message.provider_id == f"SMwait{language}{0:026d}")
        ).one()
        assert (recorded.category, recorded.words, recorded.message_id) == (
            category,
            said,
            first.id,
        )
    engine.dispose()
