"""What a reminder says about the debt, decided in one place.

Two callers render a stage's reminder: the Rasa action (`actions/reminders.py`, the usual path,
so the debtor's reply lands in context) and the dispatcher when the assistant is unreachable
(`relance/dunning/dispatcher.py`, rendered locally). Both pass these variables, so a reminder sent
while Rasa is down still names the amount, the due date, the RF creditor reference a bank
transfer needs to be matched, and the payment link, instead of the bare invoice number.
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


def balance_link(session: Session, debtor: Debtor) -> str | None:
    """A fresh link for the whole balance through the payments port (worker and api), or None
    when none can be made: the reminder still goes out, without the link. The action server has
    no port installed and calls payment_links.service.create_link itself."""
    try:
        _, url = get_payments().create_link(session, debtor=debtor, purpose="balance")
    except RelanceError as exc:  # nothing payable, several currencies
        log.info("no balance link for debtor %s: %s", debtor.id, exc.code)
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
    caller's). `invoices` are the debtor's open invoices, oldest due first; `refs` the numbers
    the dunning engine chose to name."""
    return {
        "debtor_name": debtor.display_name,
        "amount_minor": sum(i.balance_minor for i in invoices),
        "currency": invoices[0].currency,
        "due_date": invoices[0].due_date.isoformat(),
        "invoice_refs": list(refs or [i.number for i in invoices[:3]]),
        "pay_url": pay_url,
        "segment": "b2b" if debtor.segment == Segment.B2B else "consumer",
        "formal_notice_date": (today + timedelta(days=FORMAL_NOTICE_NOTICE_DAYS)).isoformat(),
        "payment_reference": rf.printable(rf.for_invoice(lead_invoice(invoices, refs).id)),
    }
