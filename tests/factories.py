"""The one place tests build rows: one `make_*` builder per domain object.

Every builder adds its row to the session, flushes it (so it has an id and the database checked
its constraints) and returns it. Keyword arguments name any column of the model; the defaults are
the plain case a reader expects (an overdue 120 € invoice in euros, a French-speaking debtor with a
postal address) so that a test spells out only what it is about. Values that the schema keeps
unique (customer numbers, invoice numbers, phone numbers, provider references…) are drawn from
`unique()`, so repeated calls, and tests running side by side under pytest-xdist, never collide.

Why one module: the dunning, console, api, channel, payment and mail tests used to carry their
own copies, each with slightly different defaults; a reader could not tell which default a test
relied on. A test that depends on a value now passes it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from relance.auth.tokens import create_token
from relance.auth.users import create_user
from relance.conversations.repository import conversation_for_debtor
from relance.db.base import utcnow
from relance.db.models import (
    Contact,
    Conversation,
    Debtor,
    Dispute,
    Handoff,
    Installment,
    Invoice,
    Letter,
    Message,
    Payment,
    PaymentPlan,
    Promise,
    ReplyRetry,
    User,
)
from relance.db.models.enums import Direction
from relance.ledger.models import InstallmentCharge, SavedPaymentMethod

PASSWORD = "correct horse battery"  # every user made by make_user logs in with it

_counter = itertools.count(1)
# Each xdist worker has its own database already; the worker number (or the pid when running
# without xdist) in every unique value also keeps rows apart when processes share one database.
_PROCESS = int(os.environ.get("PYTEST_XDIST_WORKER", "gw")[2:] or os.getpid()) % 1000

M = TypeVar("M")


def unique() -> int:
    """A number no other call returns in this test run: a per-process counter, then the process."""
    return next(_counter) * 1000 + _PROCESS


def _add(db: Session, row: M) -> M:
    db.add(row)
    db.flush()
    return row


def phone_number() -> str:
    """A French mobile number (+336…) that no other debtor in the run has."""
    return f"+336{unique() % 10**8:08d}"


def make_debtor(
    db: Session,
    *,
    channels: Sequence[str] = (),
    phone: str | None = None,
    **columns: Any,
) -> Debtor:
    """A debtor, with one contact per channel in `channels` (none by default).

    Contacts are opt-in because how a debtor can be reached is what many tests are about: a test
    says `channels=("sms", "whatsapp")` when dunning may fall back from one to the other. The
    phone contacts share `phone` (a fresh number by default); the WhatsApp one is
    `whatsapp:<phone>`, the form Twilio uses. An `email` contact is the debtor's `email` (a fresh
    address unless given). The debtor has a postal address (letters need one); pass
    `address_line=None, postcode=None, city=None` for one without.
    """
    n = unique()
    values: dict[str, Any] = {
        "customer_number": f"C-{n}",
        "name": f"Debtor {n}",
        "language": "fr",
        "address_line": "8 avenue des Tilleuls",
        "postcode": "69003",
        "city": "Lyon",
    }
    if "email" in channels:
        values["email"] = f"debtor{n}@client.example"
    values.update(columns)
    debtor = _add(db, Debtor(**values))
    phone = phone or phone_number()
    for channel in channels:
        make_contact(
            db, debtor, channel=channel, address=debtor.email if channel == "email" else phone
        )
    db.refresh(debtor)  # loads `contacts` as the tests then read them
    return debtor


def make_contact(
    db: Session,
    debtor: Debtor,
    *,
    channel: str = "sms",
    address: str | None = None,
    **columns: Any,
) -> Contact:
    """One way to reach `debtor`: a phone number (a fresh one by default) or, for `email`, an
    e-mail address (the debtor's own by default).

    For WhatsApp a bare number gets Twilio's `whatsapp:` prefix, so callers can pass the same
    phone for every channel.
    """
    if channel == "email":
        address = address or debtor.email or f"debtor{unique()}@client.example"
    address = address or phone_number()
    if channel == "whatsapp" and not address.startswith("whatsapp:"):
        address = f"whatsapp:{address}"
    return _add(db, Contact(debtor_id=debtor.id, channel=channel, address=address, **columns))


def make_invoice(
    db: Session,
    debtor: Debtor,
    amount_minor: int = 12_000,
    *,
    due: date | None = None,
    issued: date | None = None,
    **columns: Any,
) -> Invoice:
    """An open invoice in euros, due ten days ago (overdue: what collection is about).

    It was issued 30 days before it fell due unless `issued` says otherwise.
    """
    due = due or date.today() - timedelta(days=10)
    values: dict[str, Any] = {
        "number": f"F-{unique()}",
        "currency": "EUR",
        "issue_date": issued or due - timedelta(days=30),
        "due_date": due,
        "status": "open",
    }
    values.update(columns)
    return _add(db, Invoice(debtor_id=debtor.id, amount_minor=amount_minor, **values))


def make_payment(
    db: Session,
    debtor: Debtor,
    amount_minor: int,
    *,
    received_at: datetime | None = None,
    **columns: Any,
) -> Payment:
    """Money received from `debtor` now (a sandbox card payment), not yet allocated. Given a
    `reversed_at` alone, all of it came back."""
    values: dict[str, Any] = {
        "currency": "EUR",
        "method": "card",
        "provider": "sandbox",
        "provider_ref": f"pay-{unique()}",
        "received_at": received_at or datetime.now(UTC),
    }
    if columns.get("reversed_at") is not None:
        values["reversed_minor"] = amount_minor
    values.update(columns)
    return _add(db, Payment(debtor_id=debtor.id, amount_minor=amount_minor, **values))


def make_plan(
    db: Session,
    debtor: Debtor,
    amounts: Sequence[int] = (5_000, 5_000),
    *,
    first_due: date | None = None,
    step_days: int = 30,
    invoices: Sequence[Invoice] = (),
    with_installments: bool = True,
    **columns: Any,
) -> PaymentPlan:
    """An active payment plan of one installment per amount in `amounts`, `step_days` apart.

    The first installment falls due in a month unless `first_due` says otherwise; the plan
    covers `invoices`. `with_installments=False` leaves out the installment rows, as a plan
    proposed by the debtor and waiting for a collector's approval has none yet (then pass
    `total_minor` and `installments_count` to describe it).
    """
    first_due = first_due or date.today() + timedelta(days=30)
    values: dict[str, Any] = {
        "total_minor": sum(amounts),
        "currency": "EUR",
        "installments_count": len(amounts),
        "frequency": "monthly",
        "invoice_ids": [invoice.id for invoice in invoices],
    }
    values.update(columns)
    plan = PaymentPlan(debtor_id=debtor.id, **values)
    if with_installments:
        plan.installments = [
            Installment(
                seq=i + 1, due_date=first_due + timedelta(days=step_days * i), amount_minor=amount
            )
            for i, amount in enumerate(amounts)
        ]
    return _add(db, plan)


def make_mandate(
    db: Session, debtor: Debtor, plan: PaymentPlan | None = None, **columns: Any
) -> SavedPaymentMethod:
    """An active SEPA Direct Debit mandate of `debtor` with the sandbox provider (for `plan` when
    given): provider references, a mandate reference and the IBAN's last four, as
    `setup_intent.succeeded` leaves it. Pass `status`/`revoked_at` for a stopped one, or
    `kind="card"` for a saved card."""
    n = unique()
    values: dict[str, Any] = {
        "plan_id": plan.id if plan is not None else None,
        "provider": "sandbox",
        "kind": "sepa_debit",
        "status": "active",
        "customer_ref": f"cus_sandbox_{n}",
        "payment_method_ref": f"pm_sandbox_sepa_ok_{n % 10_000:04d}_{n}",
        "mandate_ref": f"mandate_sandbox_{n}",
        "mandate_reference": f"SBX-{n}",
        "mandate_text": "En signant ce mandat, vous autorisez Relance Demo SAS à débiter votre compte.",
        "last4": f"{n % 10_000:04d}",
    }
    values.update(columns)
    return _add(db, SavedPaymentMethod(debtor_id=debtor.id, **values))


def make_installment_charge(
    db: Session,
    installment: Installment,
    saved: SavedPaymentMethod,
    *,
    attempt: int = 1,
    **columns: Any,
) -> InstallmentCharge:
    """Attempt `attempt` to collect `installment` (its whole amount) with `saved`, still
    `processing` (a SEPA debit waiting for the bank); pass `status`, `failure_code`, `failed_at`
    or `settled_at` for an outcome."""
    values: dict[str, Any] = {
        "kind": saved.kind,
        "provider": saved.provider,
        "amount_minor": installment.amount_minor - installment.paid_minor,
        "currency": installment.plan.currency,
        "idempotency_key": f"relance-installment-{installment.id}-attempt-{attempt}",
        "provider_ref": f"pi_sandbox_{unique()}",
        "status": "processing",
    }
    values.update(columns)
    return _add(
        db,
        InstallmentCharge(
            installment_id=installment.id,
            saved_method_id=saved.id,
            debtor_id=saved.debtor_id,
            attempt=attempt,
            **values,
        ),
    )


def make_promise(
    db: Session,
    debtor: Debtor,
    amount_minor: int = 5_000,
    promised: date | None = None,
    *,
    invoices: Sequence[Invoice] = (),
    **columns: Any,
) -> Promise:
    """A pending promise to pay `amount_minor` euros on `promised` (in five days by default)."""
    values: dict[str, Any] = {
        "currency": "EUR",
        "promised_date": promised or date.today() + timedelta(days=5),
        "invoice_ids": [invoice.id for invoice in invoices],
    }
    values.update(columns)
    return _add(db, Promise(debtor_id=debtor.id, amount_minor=amount_minor, **values))


def make_dispute(db: Session, debtor: Debtor, **columns: Any) -> Dispute:
    """An open dispute ("the amount is wrong") with a unique reference."""
    values: dict[str, Any] = {"reference": f"D-{unique()}", "reason": "amount_wrong"}
    values.update(columns)
    return _add(db, Dispute(debtor_id=debtor.id, **values))


def make_letter(db: Session, debtor: Debtor, **columns: Any) -> Letter:
    """A queued formal letter for 100 € of principal, with interest and the 40 € indemnity."""
    values: dict[str, Any] = {
        "language": debtor.language,
        "principal_minor": 10_000,
        "interest_minor": 120,
        "indemnity_minor": 4_000,
        "currency": "EUR",
        "deadline": date.today() + timedelta(days=8),
    }
    values.update(columns)
    return _add(db, Letter(debtor_id=debtor.id, **values))


def make_conversation(db: Session, debtor: Debtor | None, **columns: Any) -> Conversation:
    """The thread with `debtor`, named as the product names it (`debtor-<id>`), last on SMS.

    With no debtor it is a thread from an unknown number, named by that number.
    """
    values: dict[str, Any] = {
        "sender_id": f"debtor-{debtor.id}" if debtor else phone_number(),
        "last_channel": "sms",
    }
    if debtor is not None:
        values["language"] = debtor.language
    values.update(columns)
    return _add(db, Conversation(debtor_id=debtor.id if debtor else None, **values))


def make_message(
    db: Session,
    conversation: Conversation,
    body: str = "…",
    *,
    direction: str = Direction.INBOUND,
    **columns: Any,
) -> Message:
    """A message in `conversation`: from the debtor (received) or, outbound, from the bot (sent).

    It goes on the conversation's last channel and becomes its latest message, as the product
    does when it stores one.
    """
    inbound = direction == Direction.INBOUND
    values: dict[str, Any] = {
        "channel": conversation.last_channel or "sms",
        "author": "debtor" if inbound else "bot",
        "status": "received" if inbound else "sent",
        "created_at": datetime.now(UTC),
    }
    values.update(columns)
    message = _add(
        db, Message(conversation_id=conversation.id, direction=direction, body=body, **values)
    )
    conversation.last_message_at = message.created_at
    return message


def make_handoff(db: Session, conversation: Conversation, **columns: Any) -> Handoff:
    """An open request for a human on `conversation` (the debtor asked), normal priority."""
    values: dict[str, Any] = {"reason": "requested", "priority": 0}
    values.update(columns)
    return _add(db, Handoff(conversation_id=conversation.id, **values))


def make_failed_reply(
    db: Session, conversation: Conversation, contact: Contact, body: str = "…", **columns: Any
) -> ReplyRetry:
    """A bot reply to the debtor whose send failed for a transient reason (Twilio 503), on
    `contact`, and its retry by the worker, due now (the first attempt made)."""
    message = make_message(
        db,
        conversation,
        body,
        direction=Direction.OUTBOUND,
        channel=contact.channel,
        address=contact.address,
        status="failed",
        error_code="20503",
    )
    values: dict[str, Any] = {
        "channel": contact.channel,
        "status": "pending",
        "attempts": 1,
        "next_attempt_at": utcnow(),
    }
    values.update(columns)
    return _add(db, ReplyRetry(message_id=message.id, contact_id=contact.id, **values))


def make_user(db: Session, role: str = "collector", email: str | None = None) -> User:
    """A console user with `role`, who logs in with `PASSWORD`."""
    email = email or f"{role}{unique()}@example.test"
    return create_user(db, email, PASSWORD, role=role, display_name=f"{role.title()} {email[:3]}")


def make_token(db: Session, name: str = "erp") -> str:
    """A live API token; returns the plaintext to put in `Authorization: Bearer`."""
    _row, plaintext = create_token(db, name)
    return plaintext


def make_handed_off_case(
    db: Session,
    *,
    priority: int = 0,
    name: str | None = None,
    text: str = "Je veux parler à quelqu'un",
) -> tuple[Debtor, Conversation, Handoff]:
    """What the console's inbox is for: a debtor with an SMS contact and an overdue invoice, who
    wrote `text` and is waiting for a collector (an open handoff). The invoice is for 100 €."""
    debtor = make_debtor(db, channels=("sms",), **({"name": name} if name else {}))
    make_invoice(db, debtor, 10_000)
    conversation = make_conversation(db, debtor)
    make_message(db, conversation, text)
    return debtor, conversation, make_handoff(db, conversation, priority=priority)


def verify_contact_point(db: Session, debtor: Debtor) -> None:
    """The debtor answered from their SMS number five days ago and passed the identity check:
    what lets dunning disclose details on that number."""
    sms = next(c for c in debtor.contacts if c.channel == "sms")
    when = utcnow() - timedelta(days=5)
    conversation = conversation_for_debtor(db, debtor)
    make_message(db, conversation, channel="sms", created_at=when, address=sms.address)
    conversation.identity_verified_at = when
    db.flush()
