"""Is the person writing to us the debtor? Checked before any debt detail is given.

The check is configurable (`settings.identity_check`): the postcode of the billing address or the
customer number printed on invoices.

A message is reduced to its *candidates*: each run of number-like words ("75 011", "SW1A 1AA",
"C-104233", a voice transcript "sept cinq zéro un un" once spelled in digits). Each candidate is
compared exactly, after normalisation, and each one counts as an attempt: a message listing 240
postcodes is 240 guesses, not one answer that happens to contain the right digits (issue 17.1).
A message without any candidate ("why do you need that?") is not an answer and costs nothing.

Numbers that are plainly something else are not candidates either: an amount ("100 bucks a
month", "250 €"), a day or a time ("the 3rd", "le 1er", "12/03", "14h30"). A debtor who answers
the identity question with a payment proposal has not guessed, and must not lose an attempt for
it; none of those shapes can be a postcode or a customer number, so an attacker gains nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance import audit
from relance.db.base import utcnow
from relance.db.models import AuditEvent, Contact, Conversation, Debtor
from relance.db.models.enums import ContactStatus
from relance.identity import repository
from relance.nlu_normalise import digits_only, fold, words_to_digits

Method = Literal["postcode", "customer_number"]

# A word made of letters and digits, possibly joined by - . / ("C-104233", "75.011", "12/03").
_WORD = re.compile(r"[0-9a-z]+(?:[-./][0-9a-z]+)*")
_SPACES_ONLY = re.compile(r"\s+")
# Shorter runs are not plausible answers ("1" from "un doute", "2 factures") and are ignored.
MIN_CANDIDATE_LENGTH = 3
# No postcode system the product serves is shorter (France 5, Belgium/Switzerland 4, UK 5-7).
MIN_POSTCODE_LENGTH = 4
# A day, an ordinal or a time of day: "3rd", "1er", "2eme", "12/03", "03.12.2026", "14h30", "3pm".
_DATE_OR_TIME = re.compile(
    r"\d{1,2}(?:st|nd|rd|th|er|re|e|eme|ieme)"
    r"|\d{1,2}[/.-]\d{1,2}(?:[/.-]\d{2,4})?"
    r"|\d{1,2}(?:h\d{0,2}|am|pm)"
)
# What makes a number an amount: a currency before it, or a currency or a rate after it.
_CURRENCY_BEFORE = re.compile(r"[€$£]\s*$")
_AMOUNT_AFTER = re.compile(
    r"\s*(?:[€$£%]|(?:eur|euros?|bucks|dollars?|pounds?|quid|balles|k)\b"
    r"|(?:a|per|par|/)\s*(?:month|mois|week|semaine)\b)"
)


@dataclass(frozen=True)
class CheckResult:
    """`attempts` is what this message costs: the candidates tried, 0 when it held none."""

    verified: bool
    attempts: int


def expected_value(debtor: Debtor, method: Method) -> str | None:
    raw = debtor.customer_number if method == "customer_number" else debtor.postcode
    return digits_only(raw) if raw else None


def candidates(
    answer: str, language: str = "fr", *, min_length: int = MIN_CANDIDATE_LENGTH
) -> list[str]:
    """The answers a message offers, normalised (upper-case letters and digits), in order.

    Number-like words separated only by spaces form one candidate, so SMS spacing ("75 011") and
    spelled-out digits ("7 5 01 1") stay one answer; anything else between them (a comma, a word)
    starts a new one.
    """
    text = fold(words_to_digits(str(answer), language))
    found: list[str] = []
    run: list[re.Match[str]] = []
    for match in _WORD.finditer(text):
        word = match.group(0)
        if not any(c.isdigit() for c in word):
            _close(text, run, found, min_length)
            continue
        if run and not _SPACES_ONLY.fullmatch(text[run[-1].end() : match.start()]):
            _close(text, run, found, min_length)
        run.append(match)
    _close(text, run, found, min_length)
    return found


def _close(text: str, run: list[re.Match[str]], found: list[str], min_length: int) -> None:
    if not run:
        return
    start, end = run[0].start(), run[-1].end()
    value = re.sub(r"[^0-9a-z]", "", "".join(m.group(0) for m in run)).upper()
    run.clear()
    if len(value) < min_length or _not_an_identifier(text, start, end):
        return
    found.append(value)


def _not_an_identifier(text: str, start: int, end: int) -> bool:
    """An amount, a day or a time: what a debtor says about paying, never an identifier."""
    if _DATE_OR_TIME.fullmatch(text[start:end]):
        return True
    return bool(_CURRENCY_BEFORE.search(text[:start]) or _AMOUNT_AFTER.match(text, end))


def _accepted(expected: str, method: Method) -> set[str]:
    """The exact forms that pass. A customer number's leading letters ("C" of "C-104233") are the
    same for every customer and often dropped when typed, so they may be left out."""
    forms = {expected}
    if method == "customer_number":
        stripped = expected.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        if len(stripped) >= MIN_CANDIDATE_LENGTH:
            forms.add(stripped)
    return forms


def check(
    debtor: Debtor,
    answer: str | None,
    *,
    method: Method,
    attempts_left: int,
    language: str = "fr",
) -> CheckResult:
    """Try the message's candidates in order, at most `attempts_left` of them.

    Verified when one of those equals the record; otherwise every candidate counts as a failed
    attempt (even those beyond `attempts_left`: the caller locks). Never verified without a record.
    """
    expected = expected_value(debtor, method)
    floor = MIN_POSTCODE_LENGTH if method == "postcode" else MIN_CANDIDATE_LENGTH
    shortest = min(floor, len(expected)) if expected else floor
    found = candidates(answer or "", language, min_length=shortest)
    if not expected:
        return CheckResult(verified=False, attempts=len(found))
    accepted = _accepted(expected, method)
    for tried, candidate in enumerate(found[: max(attempts_left, 0)], start=1):
        if candidate in accepted:
            return CheckResult(verified=True, attempts=tried)
    return CheckResult(verified=False, attempts=len(found))


# Every wrong answer about one debtor, whichever way it came: the assistant (SMS, WhatsApp, voice,
# e-mail: one tracker, whose count a collector's "resume" resets), each portal link (its own count,
# unlocked after 30 minutes) and the portal sign-in (per customer number, the same). Each lock
# ends and starts a fresh count, so without a total a guesser cycling through them got about
# 400 guesses a day at a 5-digit postcode; this caps them all together.
FAILURE_ACTIONS = ("identity.failed", "portal.identity_failed", "portal.sign_in_failed")
FAILURE_MEMORY = timedelta(hours=24)
DAILY_LIMIT_FACTOR = 3  # a day's wrong answers: this many times the per-check limit


def daily_limit_reached(session: Session, debtor_id: int, max_attempts: int) -> bool:
    """Whether `debtor_id` had `DAILY_LIMIT_FACTOR * max_attempts` wrong identity answers in the
    last 24 hours on every channel together; then no check may pass, even the right answer."""
    failures = session.scalar(
        select(func.count(AuditEvent.id)).where(
            AuditEvent.debtor_id == debtor_id,
            AuditEvent.action.in_(FAILURE_ACTIONS),
            AuditEvent.at >= utcnow() - FAILURE_MEMORY,
        )
    )
    return (failures or 0) >= DAILY_LIMIT_FACTOR * max_attempts


def mark_verified(
    session: Session,
    debtor: Debtor,
    conversation: Conversation | None,
    *,
    channel: str | None = None,
) -> None:
    """The person proved to be the debtor. A contact they had said was not theirs ("c pas
    moi…", then "ah si pardon c'est bien moi", then the right postcode: seen in the simulator)
    is theirs after all: it is reachable again, and the withdrawal is in the audit trail. Without
    this the number stayed flagged and no reminder ever reached the verified debtor on it."""
    if conversation is not None:
        conversation.identity_verified_at = utcnow()
        _withdraw_wrong_person(session, conversation, channel)
    audit.record(
        session, actor="bot", action="identity.verified", entity=conversation, debtor_id=debtor.id
    )


def _withdraw_wrong_person(
    session: Session, conversation: Conversation, channel: str | None
) -> None:
    contact, channel = _written_from(session, conversation, channel)
    if contact is None or contact.status != ContactStatus.WRONG_PERSON:
        return
    contact.status = ContactStatus.OK
    audit.record(
        session,
        actor="debtor",
        action="contact.wrong_person_withdrawn",
        entity=contact,
        debtor_id=conversation.debtor_id,
        channel=channel,
    )


def record_failure(
    session: Session, debtor: Debtor, *, attempts: int, locked: bool, candidates: int = 1
) -> None:
    """`candidates`: how many answers the message held (each one counted in `attempts`)."""
    audit.record(
        session,
        actor="bot",
        action="identity.failed",
        debtor_id=debtor.id,
        attempts=attempts,
        locked=locked,
        candidates=candidates,
    )


def mark_wrong_person(session: Session, conversation: Conversation, *, channel: str | None) -> None:
    """Flag the contact the person wrote from: the dunning engine no longer uses it."""
    contact, channel = _written_from(session, conversation, channel)
    if contact is not None:
        contact.status = ContactStatus.WRONG_PERSON
    audit.record(
        session,
        actor="debtor",
        action="contact.wrong_person",
        entity=contact,
        debtor_id=conversation.debtor_id,
        channel=channel,
    )


def _written_from(
    session: Session, conversation: Conversation, channel: str | None
) -> tuple[Contact | None, str | None]:
    """The contact the person last wrote from on `channel` (else the conversation's last
    channel), and that channel: the one a wrong-person mark flags and a verification clears."""
    channel = channel or conversation.last_channel
    address = repository.last_inbound_address(session, conversation.id, channel)
    return repository.find_contact(session, conversation.debtor_id, channel, address), channel
