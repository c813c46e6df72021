"""Locale-aware formatting used inside templates: money in minor units, dates."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from babel.dates import format_date, format_datetime
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
