"""Create a mise en demeure: compute the claim, get a payment link, render the PDF, queue it.

One letter per debtor and currency covers every invoice claimed at once (the creditor posts one
registered letter, not one per invoice); interest and the B2B indemnity stay per invoice. An invoice
already claimed by a live letter (queued or posted) is never put in a second one.

The letter is queued for registered mail (`status=queued`, `tracking_number` filled when posted);
the dispatcher then tells the debtor by SMS that a letter is on its way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance import audit
from relance.bank_statements import rf
from relance.compliance.windows import zone
from relance.db.base import utcnow
from relance.db.models import Debtor, Invoice, Letter
from relance.db.models.enums import InvoiceStatus, LetterStatus
from relance.errors import Conflict, InvalidContent, PolicyViolation
from relance.letters.amounts import Claim, compute_claim
from relance.letters.render import place_from_address, qr_svg, render_html, render_pdf
from relance.outbox.service import emit
from relance.policy.schema import Policy
from relance.policy.service import active_policy
from relance.portal.access import message_link
from relance.private_files import private_dir, write_private
from relance.settings import get_settings

KIND = "mise_en_demeure"
LIVE = (LetterStatus.QUEUED, LetterStatus.SENT)


@dataclass
class LetterDraft:
    claim: Claim
    context: dict[str, Any]
    html: str
    language: str
    deadline: date


def open_invoices(
    session: Session, debtor: Debtor, invoice_ids: list[int] | None, *, as_of: date
) -> list[Invoice]:
    """The invoices a formal notice may claim on `as_of`: open, unpaid and already due (due
    before `as_of`). A mise en demeure claims a sum due (Code civil art. 1344; the late-payment
    interest runs from the day after the due date): an invoice still to fall due is never in
    one, whoever asks for the letter (a stage, a collector, the CLI)."""
    query = select(Invoice).where(
        Invoice.debtor_id == debtor.id,
        Invoice.status.in_([InvoiceStatus.OPEN, InvoiceStatus.DISPUTED]),
        Invoice.amount_minor > Invoice.paid_minor,
        Invoice.due_date < as_of,
    )
    if invoice_ids:
        query = query.where(Invoice.id.in_(invoice_ids))
    return list(session.scalars(query.order_by(Invoice.due_date, Invoice.id)))


def _printable_iban(accounts: list[str]) -> str | None:
    """The first configured account in groups of four, as printed on a letter."""
    if not accounts:
        return None
    return " ".join(accounts[0][i : i + 4] for i in range(0, len(accounts[0]), 4))


def draft(
    session: Session,
    debtor: Debtor,
    invoices: list[Invoice],
    *,
    as_of: date,
    policy: Policy,
    language: str | None = None,
    payment_url: str | None = None,
    reference: str = "MED-BROUILLON",
    tracking_number: str | None = None,
    portal_url: str | None = None,
) -> LetterDraft:
    rules = policy.letters
    language = language or debtor.language or rules.language
    claim = compute_claim(invoices, segment=debtor.segment, as_of=as_of, rules=rules)
    deadline = as_of + timedelta(days=rules.deadline_days)
    settings = get_settings()
    address_lines = [
        line
        for line in (
            debtor.address_line,
            " ".join(p for p in (debtor.postcode, debtor.city) if p),
            _country_name(debtor.country),
        )
        if line
    ]
    context = {
        "creditor": {
            "name": settings.creditor_name,
            "address": settings.creditor_address,
            "phone": settings.creditor_phone,
            "siren": settings.creditor_siren,
        },
        "footer": f"{settings.creditor_name} — {settings.creditor_address} — "
        f"SIREN {settings.creditor_siren}",
        "debtor": {
            "name": debtor.name,
            "company": debtor.company,
            "customer_number": debtor.customer_number,
            "address_lines": address_lines,
        },
        "claim": claim,
        "currency": claim.currency,
        "rate": _rate_text(claim.rate_pct, language),
        # In euros, and 0 (no indemnity sentence nor column) for a claim in another currency.
        "indemnity_unit": claim.indemnity_unit_minor,
        "today": as_of,
        "deadline": deadline,
        "deadline_days": rules.deadline_days,
        "payment_url": payment_url,
        "qr_svg": qr_svg(payment_url) if payment_url else None,
        # The portal reached from the paper letter by a phone's camera, like the payment link.
        "portal_qr_svg": qr_svg(portal_url) if portal_url else None,
        # The debtor's portal link (the one their e-mails carry), and the sign-in page for a
        # reader who would rather type a short address and their customer number.
        "portal_url": portal_url,
        "portal_sign_in": f"{settings.public_base_url.rstrip('/')}/portal",
        "reference": reference,
        # ISO 11649 reference of the letter's first invoice: a transfer quoting it is matched
        # automatically when the bank statement is imported (relance/bank_statements).
        "payment_reference": (
            rf.printable(rf.for_invoice(invoices[0].id)) if invoices and invoices[0].id else None
        ),
        "creditor_iban": _printable_iban(settings.creditor_iban_list),
        "tracking_number": tracking_number,
        "place": place_from_address(settings.creditor_address),
    }
    html = render_html(KIND, language, context)
    return LetterDraft(
        claim=claim, context=context, html=html, language=language, deadline=deadline
    )


def create_formal_notice(
    session: Session,
    debtor: Debtor,
    invoice_ids: list[int] | None = None,
    *,
    now: datetime | None = None,
    policy: Policy | None = None,
    language: str | None = None,
    payment_url: str | None = None,
    out_dir: Path | None = None,
) -> Letter:
    """Render the letter for these invoices, store the PDF and queue it for registered mail.

    Refused before anything is stored: `Conflict("no_open_invoice")`,
    `Conflict("already_in_letter")` when every invoice is already in a queued or posted letter
    (queueing another would duplicate it; `letters` maps invoice id → letter id), and
    `PolicyViolation("mixed_currencies")` (a letter cannot add euros and pounds).
    """
    now = now or utcnow()
    policy = policy or active_policy(session)
    _lock_debtor(session, debtor)  # two makers for one debtor: the second sees the first's letter
    as_of = now.astimezone(zone(debtor.timezone)).date()
    invoices = open_invoices(session, debtor, invoice_ids, as_of=as_of)
    if not invoices:
        raise Conflict(
            "no_open_invoice",
            f"debtor {debtor.id} has no open invoice past its due date to claim (a formal notice"
            " claims only sums already due)",
        )
    claimed = claimed_invoices(session, debtor.id, [i.id for i in invoices])
    if claimed:
        invoices = [i for i in invoices if i.id not in claimed]
        if not invoices:
            raise Conflict(
                "already_in_letter",
                f"invoices already in a queued or posted letter: {claimed}",
                letters=claimed,
            )
    currencies = {i.currency for i in invoices}
    if len(currencies) > 1:
        raise PolicyViolation(
            "mixed_currencies",
            f"one letter per currency: invoices in {sorted(currencies)}; pass one currency's ids",
        )
    if payment_url is None:
        payment_url = _payment_url(session, debtor, [i.id for i in invoices])
    letter = Letter(
        debtor_id=debtor.id,
        kind=KIND,
        language=language or debtor.language,
        status=LetterStatus.QUEUED,
        invoice_ids=[i.id for i in invoices],
        principal_minor=0,
        currency=invoices[0].currency,
        deadline=as_of,
    )
    session.add(letter)
    session.flush()
    result = draft(
        session,
        debtor,
        invoices,
        as_of=as_of,
        policy=policy,
        language=language,
        payment_url=payment_url,
        reference=reference_for(letter),
        portal_url=message_link(session, debtor),
    )
    letter.language = result.language
    letter.principal_minor = result.claim.principal_minor
    letter.interest_minor = result.claim.interest_minor
    letter.indemnity_minor = result.claim.indemnity_minor
    letter.deadline = result.deadline
    folder = out_dir or (get_settings().var_dir / "letters")
    private_dir(folder)
    path = write_private(folder / f"{reference_for(letter)}.pdf", render_pdf(result.html))
    letter.pdf_path = str(path)
    audit.record(
        session,
        actor="system",
        action="letter.queued",
        entity=letter,
        debtor_id=debtor.id,
        invoices=[i.number for i in invoices],
        total_minor=result.claim.total_minor,
        deadline=result.deadline,
        payment_url=bool(payment_url),
    )
    return letter


def claimed_invoices(session: Session, debtor_id: int, invoice_ids: list[int]) -> dict[int, int]:
    """invoice id -> id of the live letter (queued or posted) that already claims it."""
    wanted = set(invoice_ids)
    found: dict[int, int] = {}
    rows = session.execute(
        select(Letter.id, Letter.invoice_ids)
        .where(Letter.debtor_id == debtor_id, Letter.kind == KIND, Letter.status.in_(LIVE))
        .order_by(Letter.id)
    )
    for letter_id, ids in rows:
        for invoice_id in ids or []:
            if invoice_id in wanted:
                found.setdefault(invoice_id, letter_id)
    return found


TRACKING_RE = re.compile(r"^[A-Z0-9]{8,20}$")


def normalise_tracking(value: str) -> str:
    """'1a 1234 5678 901' → '1A12345678901'. La Poste numbers are letters and digits only
    (`InvalidContent("invalid_tracking_number")` otherwise)."""
    text = re.sub(r"[\s-]", "", value or "").upper()
    if not TRACKING_RE.match(text):
        raise InvalidContent(
            "invalid_tracking_number",
            "A tracking number is 8 to 20 letters and digits, e.g. 1A12345678901.",
        )
    return text


def mark_posted(session: Session, letter: Letter, tracking_number: str, *, actor: str) -> Letter:
    """Registered mail posted: keep the tracking number, who and when (proof of sending for court).

    Only queued → posted: a posted letter keeps its first tracking number, a cancelled one stays
    cancelled (`Conflict("letter_not_queued")`). The row is locked so two collectors posting at
    once cannot both succeed.
    """
    tracking_number = normalise_tracking(tracking_number)
    session.execute(select(Letter.id).where(Letter.id == letter.id).with_for_update())
    session.refresh(letter)
    if letter.status != LetterStatus.QUEUED:
        raise Conflict(
            "letter_not_queued", f"letter {reference_for(letter)} is {letter.status}, not queued"
        )
    letter.tracking_number = tracking_number
    letter.status = LetterStatus.SENT
    letter.sent_at = utcnow()
    letter.posted_by = actor
    audit.record(
        session,
        actor=actor,
        action="letter.posted",
        entity=letter,
        debtor_id=letter.debtor_id,
        tracking_number=tracking_number,
    )
    emit(
        session,
        "letter.sent",
        debtor_id=letter.debtor_id,
        letter_id=letter.id,
        reference=reference_for(letter),
        tracking_number=tracking_number,
    )
    return letter


def _lock_debtor(session: Session, debtor: Debtor) -> None:
    """Serialise letter creation per debtor (PostgreSQL row lock; SQLite serialises writers)."""
    session.execute(select(Debtor.id).where(Debtor.id == debtor.id).with_for_update())


def reference_for(letter: Letter) -> str:
    return f"MED-{letter.id:06d}"


def _payment_url(session: Session, debtor: Debtor, invoice_ids: list[int]) -> str | None:
    """A payment link from the payments edge when it is wired in; the letter works without."""
    from relance.ledger.ports import get_payments

    try:
        port = get_payments()
    except RuntimeError:
        return None
    _link, url = port.create_link(
        session, debtor=debtor, purpose="balance", invoice_ids=invoice_ids
    )
    return url


def _rate_text(rate_pct: float, language: str) -> str:
    text = f"{rate_pct:.2f}".rstrip("0").rstrip(".")
    return text.replace(".", ",") if language == "fr" else text


def _country_name(code: str | None) -> str | None:
    if not code or code.upper() == "FR":
        return None  # domestic mail: no country line
    from babel import Locale

    name: str = Locale("fr").territories.get(code.upper(), code)
    return name.upper()
