"""Render the portal pages: Jinja2 templates + the fr/en catalogue (`messages.yml`).

Pages autoescape everything; money and dates are formatted per locale with Babel
(`relance.nlg.formatting`), like the payer pages and the letters.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from babel.numbers import format_decimal
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from relance.languages import LANGUAGES
from relance.nlg.formatting import locale_for, long_date, money
from relance.settings import get_settings

HERE = Path(__file__).parent


@lru_cache
def catalogue() -> dict[str, dict[str, str]]:
    with (HERE / "messages.yml").open(encoding="utf-8") as fh:
        loaded: dict[str, dict[str, str]] = yaml.safe_load(fh)
    return loaded


def language_of(value: str | None) -> str | None:
    """'fr', 'en' or an Accept-Language header -> a supported language, or None."""
    for part in (value or "").replace(" ", "").split(","):
        code = part.split(";")[0].split("-")[0].lower()
        if code in LANGUAGES:
            return code
    return None


def translate(language: str, key: str, **values: Any) -> str:
    """Every key exists in both languages (tests/portal/test_pages.py checks the catalogue)."""
    text = catalogue()[language][key]
    return text.format(**values) if values else text


def has_key(key: str) -> bool:
    return key in catalogue()["fr"]


def failure_clause(language: str, kind: str, reason: str) -> str:
    """What happened to an instalment's automatic payment (`kind` card or sepa_debit), in the
    words of the message the debtor got for it (`relance/nlg/templates/responses.yml`,
    utter_installment_charge_failed / utter_installment_debit_failed). That message names some
    reasons and says "no reason we can pass on" for the others (a card message has no words for
    a closed bank account): so does this."""
    key = f"charge_failed_{kind}_{reason}"
    return translate(language, key if has_key(key) else f"charge_failed_{kind}_no_reason")


def charge_failure(language: str, kind: str, reason: str) -> str:
    """The sentence shown beside the instalment: its payment and what happened to it."""
    return translate(
        language, f"charge_failed_{kind}", reason=failure_clause(language, kind, reason)
    )


@lru_cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        auto_reload=False,
        undefined=StrictUndefined,
    )


def _date(value: date | datetime | None, language: str) -> str:
    if value is None:
        return ""
    return long_date(value.date() if isinstance(value, datetime) else value, language)


def render_page(template: str, language: str, **context: Any) -> str:
    settings = get_settings()

    def t(key: str, **values: Any) -> str:
        defaults = {"creditor": settings.creditor_name, "phone": settings.creditor_phone}
        return translate(language, key, **{**defaults, **values})

    base: dict[str, Any] = {
        "lang": language,
        "other_lang": "en" if language == "fr" else "fr",
        "creditor": settings.creditor_name,
        "creditor_phone": settings.creditor_phone,
        "notice": None,
        "notice_values": {},
        "error": None,
        "title": None,
        "title_key": None,
        "body": None,
        "body_key": None,
        "body_values": {},
        "back": None,
        "csrf": "",
        "attempts_left": None,
        "base_path": "",
        "signed_in": False,
        "form_error": None,
        "kept": {},
    }
    return (
        _environment()
        .get_template(template)
        .render(
            **{**base, **context},
            t=t,
            money=lambda amount, currency="EUR": money(amount, currency, language),
            date=lambda value: _date(value, language),
            number=lambda value: format_decimal(value, locale=locale_for(language)),
            charge_failure=lambda kind, reason: charge_failure(language, kind, reason),
        )
    )
