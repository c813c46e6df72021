"""The portal's fr/en catalogue (`portal/messages.yml`): complete in both languages, with the same
placeholders, every key a template names present, and a name for every payment provider (the
SEPA mandate text names the one in use)."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from payment_links.providers.sandbox import SandboxProvider
from payment_links.providers.stripe_provider import StripeProvider
from portal.pages import catalogue

TEMPLATES = Path(__file__).parents[2] / "portal" / "templates"
LITERAL_KEY = re.compile(r"""\bt\(\s*["']([a-z0-9_]+)["']\s*[,)]""")  # t("key") or t("key", ...)


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_french_and_english_have_the_same_keys_and_placeholders() -> None:
    fr, en = catalogue()["fr"], catalogue()["en"]
    assert set(fr) == set(en)
    assert {k: _fields(fr[k]) for k in fr} == {k: _fields(en[k]) for k in fr}


def test_every_key_a_template_names_exists() -> None:
    named = {
        key
        for template in TEMPLATES.glob("*.html")
        for key in LITERAL_KEY.findall(template.read_text(encoding="utf-8"))
    }
    assert named, "no t('...') found: the pattern no longer matches the templates"
    assert sorted(named - set(catalogue()["fr"])) == []


@pytest.mark.parametrize("provider", [SandboxProvider.name, StripeProvider.name])
def test_every_payment_provider_has_a_name_for_the_mandate_text(provider: str) -> None:
    for language in ("fr", "en"):
        assert catalogue()[language][f"payment_provider_{provider}"].strip()
    assert _fields(catalogue()["fr"]["sepa_mandate_text"]) == {"creditor", "provider"}
