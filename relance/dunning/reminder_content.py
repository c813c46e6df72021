"""What a reminder says about the debt, decided in one place.

Two callers render a stage's reminder: the Rasa action (`actions/reminders.py`, the usual path,
so the debtor's reply lands in context) and the dispatcher when the assistant is unreachable
(`relance/dunning/dispatcher.py`, rendered locally). Both pass these variables, so a reminder sent
while Rasa is down still names the amount, the due date, the RF creditor reference a bank
transfer needs to be matched, and the payment link, instead of the bare invoice number.

A reminder states the amount of the invoices it is about, never the debtor's whole balance: the
stage wording says "invoices F-1 (100 €) are past their due date" and, for a business, that
late-payment interest and the EUR 40 indemnity apply (the indemnity for invoices in euros only:
`relance.letters.amounts.indemnity_applies`; "EUR 40" is never owed on a bill in dollars); adding an invoice due next month to that
amount claimed money not yet due. What it is about (`reminder_invoices`) is the invoices the
dunning engine named that are due (a dunning stage), or the named upcoming ones (a pre-due
reminder); its payment link (`reminder_link`) is for those same invoices, so the page the debtor
opens shows the amount the reminder said.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy.orm import Session

from relance.bank_statements import rf
from relance.db.models import Debtor, Invoice
from relance.db.models.enums import Segment
from relance.errors import RelanceError
from relance.ledger.ports import get_payments
from relance.letters.amounts import indemnity_applies

log = logging.getLogger(__name__)

# The formal notice announced at the last stage comes this many days after the reminder.
FORMAL_NOTICE_NOTICE_DAYS = 8


def lead_invoice(invoices: Sequence[Invoice], refs: Sequence[str] | None) -> Invoice:
    """The invoice the reminder names first: its RF reference is the one printed for a transfer
    (the ledger pays the named invoice first, then the oldest others)."""
    by_number = {i.number: i for i in invoices}
    for ref in refs or []:
        if ref in by_number:
            return by_number[ref]
    return invoices[0]


# The bot stage of a reminder sent before the due date (policy `bot_stage`, actions/reminders.py).
PRE_DUE = "pre_due"


def reminder_invoices(
    invoices: Sequence[Invoice], refs: Sequence[str] | None, *, stage: str, today: date
) -> list[Invoice]:
    """The invoices a stage reminder is about, oldest due first: the only ones it may claim.

    `invoices` are the debtor's open invoices (oldest due first), `refs` the numbers the dunning
    engine named (its group: the invoices whose stage is due today). A dunning stage claims the
    named invoices already due (on or after their date): a named invoice still to fall due, in
    the same group as an overdue one (its pre-due stage falls on the same day), is not "past its
    due date". A pre-due reminder is about the named invoice coming due. Without `refs` (a
    reminder not from the engine) the same rule applies to every open invoice. Named invoices
    no longer open (paid since) are not named either.
    """
    named = set(refs or ())
    about = [i for i in invoices if i.number in named] if named else list(invoices)
    if stage == PRE_DUE:
        return about if named else [i for i in about if i.due_date > today]
    return [i for i in about if i.due_date <= today]


def reminder_link(session: Session, debtor: Debtor, invoices: Sequence[Invoice]) -> str | None:
    """A fresh link for the reminder's invoices through the payments port (worker and api), or
    None when none can be made: the reminder still goes out, without the link.

    The link is for the invoices the reminder names, not the whole balance: its page shows the
    amount the reminder stated, so a debtor who was told "100 € overdue" is not asked for 600 €
    on opening it (an invoice due next month included). That is the least surprising page; the
    debtor who wants to pay the rest early does so from the portal, which lists every invoice.
    The action server has no port installed and calls payment_links.service.create_link itself,
    with the same `invoice_ids`."""
    try:
        _, url = get_payments().create_link(
            session, debtor=debtor, purpose="balance", invoice_ids=[i.id for i in invoices]
        )
    except RelanceError as exc:  # nothing payable, several currencies
        log.info("no reminder link for debtor %s: %s", debtor.id, exc.code)
        return None
    return url


def reminder_variables(
    debtor: Debtor,
    invoices: Sequence[Invoice],
    refs: Sequence[str] | None,
    *,
    today: date,
    pay_url: str | None,
) -> dict[str, Any]:
    """The debt's variables of a stage reminder (the stage and first-contact flags are the
    caller's). `invoices` are the ones the reminder is about (`reminder_invoices`, oldest due
    first, at least one): the amount, the due date and the numbers all describe them and only
    them; `refs` the numbers the dunning engine named, of which the first still claimed gives
    the RF reference."""
    return {
        "debtor_name": debtor.display_name,
        "amount_minor": sum(i.balance_minor for i in invoices),
        "currency": invoices[0].currency,
        "due_date": invoices[0].due_date.isoformat(),
        "invoice_refs": [i.number for i in invoices],
        "pay_url": pay_url,
        "segment": "b2b" if debtor.segment == Segment.B2B else "consumer",
        # The wording's "the EUR 40 recovery indemnity applies": a business's invoices in euros.
        "indemnity": debtor.segment == Segment.B2B
        and any(indemnity_applies(i.currency) for i in invoices),
        "formal_notice_date": (today + timedelta(days=FORMAL_NOTICE_NOTICE_DAYS)).isoformat(),
        "payment_reference": rf.printable(rf.for_invoice(lead_invoice(invoices, refs).id)),
    }
