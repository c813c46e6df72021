"""Render a named response in the debtor's language, tone and channel.

Templates are Jinja2 in a sandbox (admins edit them), with `money` and `date` filters that format
per locale. A variant is chosen by channel (voice has spoken variants without URLs) then tone.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from typing import Any

from jinja2 import ChainableUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from relance.languages import LANGUAGES
from relance.nlg.formatting import long_date, long_datetime, money
from relance.nlg.templates_store import Templates

log = logging.getLogger(__name__)


class UnknownResponse(KeyError):
    """The response name has no template at all."""


def _environment(language: str) -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=ChainableUndefined, autoescape=False)
    env.filters["money"] = lambda amount, currency="EUR": money(amount, currency, language)
    env.filters["date"] = lambda value: long_date(value, language)
    env.filters["datetime"] = lambda value: long_datetime(value, language)
    return env


_ENVIRONMENTS = {lang: _environment(lang) for lang in LANGUAGES}


def choose_variant(
    variants: list[dict[str, Any]], *, tone: str | None, channel: str | None, rng: random.Random
) -> dict[str, Any]:
    """Most specific match wins: same channel and tone, then channel, then tone, then plain."""

    def score(variant: Mapping[str, Any]) -> int | None:
        v_channel, v_tone = variant.get("channel"), variant.get("tone")
        if v_channel and v_channel != channel:
            return None
        if v_tone and v_tone != tone:
            return None
        return (2 if v_channel else 0) + (1 if v_tone else 0)

    scored = [(score(v), v) for v in variants]
    candidates = [(s, v) for s, v in scored if s is not None]
    if not candidates:
        return variants[0]
    best = max(s for s, _ in candidates)
    return rng.choice([v for s, v in candidates if s == best])


def render(
    templates: Templates,
    name: str,
    *,
    language: str,
    variables: Mapping[str, Any] | None = None,
    tone: str | None = None,
    channel: str | None = None,
    rng: random.Random | None = None,
) -> str:
    variants = templates.get(name)
    if not variants:
        raise UnknownResponse(name)
    language = language if language in LANGUAGES else "fr"
    variant = choose_variant(variants, tone=tone, channel=channel, rng=rng or random.Random())
    source = variant.get(language) or variant.get("fr") or variant.get("en") or ""
    context = dict(variables or {})
    context.setdefault("language", language)
    try:
        text = _ENVIRONMENTS[language].from_string(source).render(context)
    except TemplateError:
        log.exception("template %s (%s) failed to render", name, language)
        raise
    return text.strip()


def validate_templates(templates: Templates) -> list[str]:
    """Problems an admin must fix before saving: missing language, bad syntax."""
    problems: list[str] = []
    for name, variants in templates.items():
        if not isinstance(variants, list) or not variants:
            problems.append(f"{name}: needs at least one variant")
            continue
        for i, variant in enumerate(variants):
            for lang in LANGUAGES:
                text = variant.get(lang) if isinstance(variant, dict) else None
                if not text:
                    problems.append(f"{name}[{i}]: missing {lang} text")
                    continue
                try:
                    _ENVIRONMENTS[lang].parse(text)
                except TemplateError as exc:
                    problems.append(f"{name}[{i}] ({lang}): {exc}")
    return problems
