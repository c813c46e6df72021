"""Render the payer pages: Jinja2 templates + the fr/en message catalogue (`messages.yml`).

Pages autoescape everything; money and dates are formatted per locale with Babel.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, select_autoescape

from relance.languages import LANGUAGES
from relance.nlg.formatting import long_date, money
from relance.settings import get_settings

HERE = Path(__file__).parent


@lru_cache
def catalogue() -> dict[str, dict[str, str]]:
    with (HERE / "messages.yml").open(encoding="utf-8") as fh:
        loaded: dict[str, dict[str, str]] = yaml.safe_load(fh)
    return loaded


def language_of(value: str | None) -> str:
    """'fr', 'en' or an Accept-Language header -> a supported language (French by default)."""
    for part in (value or "").replace(" ", "").split(","):
        code = part.split(";")[0].split("-")[0].lower()
        if code in LANGUAGES:
            return code
    return "fr"


def translate(language: str, key: str, **values: Any) -> str:
    messages = catalogue().get(language) or catalogue()["fr"]
    text = messages.get(key) or catalogue()["fr"][key]
    return text.format(**values) if values else text


@lru_cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        auto_reload=False,
    )


def render_page(template: str, language: str, **context: Any) -> str:
    settings = get_settings()
    env = _environment()
    base = {
        "lang": language,
        "creditor": settings.creditor_name,
        "creditor_address": settings.creditor_address,
        "creditor_phone": settings.creditor_phone,
        "back": None,  # the portal page to go back to (payment_links/returns.py), if any
    }

    def t(key: str, **values: Any) -> str:
        defaults = {
            "creditor": settings.creditor_name,
            "phone": settings.creditor_phone,
            "address": settings.creditor_address,
        }
        return translate(language, key, **{**defaults, **values})

    return env.get_template(template).render(
        **{**base, **context},
        t=t,
        money=lambda amount, currency="EUR": money(amount, currency, language),
        date=lambda value: long_date(value, language),
    )
