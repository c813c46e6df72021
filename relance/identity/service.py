"""Is the person writing to us the debtor? Checked before any debt detail is given.

The check is configurable (`settings.identity_check`): the postcode of the billing address or the
customer number printed on invoices. Answers are compared after normalisation so SMS typing
("75 011"), voice transcripts ("sept cinq zéro un un") and case differences still match.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy.orm import Session

from relance import audit
from relance.db.base import utcnow
from relance.db.models import Conversation, Debtor
from relance.db.models.enums import ContactStatus
from relance.identity import repository
from relance.nlu_normalise import digits_only

Method = Literal["postcode", "customer_number"]


def expected_value(debtor: Debtor, method: Method) -> str | None:
    raw = debtor.customer_number if method == "customer_number" else debtor.postcode
    return digits_only(raw) if raw else None


def check_answer(debtor: Debtor, answer: str | None, *, method: Method, language: str = "fr") -> bool:
    """True when the answer matches the debtor's record; never True without a record."""
    expected = expected_value(debtor, method)
    if not expected or not answer:
        return False
    given = digits_only(str(answer), language)
    if given == expected:
        return True
    # The value may sit inside a sentence: "mon code postal est 75011".
    return expected in given and len(expected) >= 4


def mark_verified(session: Session, debtor: Debtor, conversation: Conversation | None) -> None:
    if conversation is not None:
        conversation.identity_verified_at = utcnow()
    audit.record(session, actor="bot", action="identity.verified", entity=conversation,
                 debtor_id=debtor.id)


def record_failure(session: Session, debtor: Debtor, *, attempts: int, locked: bool) -> None:
    audit.record(session, actor="bot", action="identity.failed", debtor_id=debtor.id,
                 attempts=attempts, locked=locked)


def mark_wrong_person(session: Session, conversation: Conversation, *, channel: str | None) -> None:
    """Flag the contact the person wrote from: the dunning engine no longer uses it."""
    channel = channel or conversation.last_channel
    address = repository.last_inbound_address(session, conversation.id, channel)
    contact = repository.find_contact(session, conversation.debtor_id, channel, address)
    if contact is not None:
        contact.status = ContactStatus.WRONG_PERSON
    audit.record(session, actor="debtor", action="contact.wrong_person", entity=contact,
                 debtor_id=conversation.debtor_id, channel=channel)
