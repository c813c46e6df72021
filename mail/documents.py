"""The PDFs an e-mail carries: a copy of each invoice and, at the formal stage, the letter.

The invoice copy is rendered with the letters' engine (WeasyPrint) and cached on disk by
invoice, balance and language: a sequence of reminders re-attaches the same bytes, and a batch of
e-mails does not re-render a PDF per message. The letter PDF is the very file queued for
registered mail, so the e-mail and the post carry the same document.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, select_autoescape

from relance.db.models import Debtor, Invoice, Letter
from relance.letters.render import render_pdf
from relance.letters.service import reference_for
from relance.nlg.formatting import long_date, money
from relance.private_files import private_dir, write_private
from relance.settings import get_settings

TEMPLATES = Path(__file__).resolve().parent / "templates"
LOCALES = {"fr": "fr_FR", "en": "en_GB"}


@cache
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


@cache
def _labels() -> dict[str, dict[str, str]]:
    loaded: dict[str, dict[str, str]] = yaml.safe_load(
        (TEMPLATES / "invoice_labels.yml").read_text(encoding="utf-8")
    )
    return loaded


def invoice_pdf(invoice: Invoice, debtor: Debtor, language: str) -> tuple[str, bytes]:
    """(file name, PDF bytes) of a copy of `invoice`, from the disk cache when unchanged."""
    language = language if language in LOCALES else "fr"
    key = hashlib.sha256(
        f"{invoice.id}:{invoice.number}:{invoice.amount_minor}:{invoice.paid_minor}:{language}".encode()
    ).hexdigest()[:24]
    folder = private_dir(get_settings().var_dir / "mail" / "invoices")
    path = folder / f"{key}.pdf"
    name = f"{invoice.number}.pdf"
    if path.exists():
        return name, path.read_bytes()
    data = render_pdf(
        _environment().get_template("invoice.html").render(**_context(invoice, debtor, language))
    )
    write_private(path, data)
    return name, data


def _context(invoice: Invoice, debtor: Debtor, language: str) -> dict[str, Any]:
    settings = get_settings()
    return {
        "language": language,
        "labels": _labels()[language],
        "invoice": invoice,
        "creditor_name": settings.creditor_name,
        "creditor_address": settings.creditor_address,
        "creditor_siren": settings.creditor_siren,
        "debtor_name": debtor.name,
        "debtor_company": debtor.company,
        "customer_number": debtor.customer_number,
        "issue_date": long_date(invoice.issue_date, language),
        "due_date": long_date(invoice.due_date, language),
        "amount": money(invoice.amount_minor, invoice.currency, language),
        "balance": money(invoice.balance_minor, invoice.currency, language),
    }


def letter_pdf(letter: Letter) -> tuple[str, bytes] | None:
    """(file name, bytes) of the formal notice as queued for the post; None if not rendered."""
    if not letter.pdf_path or not Path(letter.pdf_path).is_file():
        return None
    return f"{reference_for(letter)}.pdf", Path(letter.pdf_path).read_bytes()
