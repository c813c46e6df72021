"""Locale-aware formatting used inside templates: money in minor units, dates, lists."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal

from babel.dates import format_date, format_datetime
from babel.lists import format_list
from babel.numbers import format_currency, get_currency_precision
from jinja2 import Undefined

LOCALES = {"fr": "fr_FR", "en": "en_GB"}


def locale_for(language: str) -> str:
    return LOCALES.get(language, "fr_FR")


def money(
    amount_minor: int | str | Undefined | None, currency: str = "EUR", language: str = "fr"
) -> str:
    """Format integer minor units (e.g. 12345 EUR) as '123,45 €' / '€123.45'."""
    if amount_minor is None or amount_minor == "" or isinstance(amount_minor, Undefined):
        return ""
    precision = get_currency_precision(currency)
    major = Decimal(int(amount_minor)) / (Decimal(10) ** precision)
    return format_currency(major, currency, locale=locale_for(language))


def long_date(value: date | datetime | str | None, language: str = "fr") -> str:
    """'15 mars 2026' / '15 March 2026'. Accepts ISO strings as slots carry them."""
    if not value:  # None, "" or a missing template variable
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        value = value.date()
    return format_date(value, format="long", locale=locale_for(language))


def long_datetime(value: datetime | str | None, language: str = "fr") -> str:
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return format_datetime(value, format="d MMMM y HH:mm", locale=locale_for(language))


def and_list(items: Iterable[object] | str | None, language: str = "fr") -> str:
    """'F-1 et F-2', 'F-1, F-2 et F-3' / 'F-1, F-2 and F-3': several invoices named as a list the
    debtor's language writes, not a comma-joined run that reads as one odd reference.

    A single string is one item (a slot may hold one number as text): iterating it would spell
    it out letter by letter. British English (`en_GB`) puts no comma before "and".
    """
    if items is None:
        return ""
    if isinstance(items, str):
        return items
    return format_list([str(item) for item in items], locale=locale_for(language))
