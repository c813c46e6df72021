"""Every response in responses.yml, in every language, channel and tone variant, rendered with the
values the application really passes (relance/nlg/catalogue.py), is a complete sentence.

The list of responses is read from the file at collection time: responses added later (by any
team) are covered without editing this test. A response that needs a value its callers do not
pass, prints an optional one without a guard, or lacks the opt-out notice where the law needs it
fails here with the reason.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from relance.db.models.enums import Channel
from relance.languages import LANGUAGES
from relance.nlg import catalogue, validation
from relance.nlg.renderer import (
    TemplateFailed,
    render,
    render_source,
    runtime_variables,
    validate_templates,
)
from relance.policy.service import seed_document

RESPONSES = Path(__file__).resolve().parents[3] / "relance" / "nlg" / "templates" / "responses.yml"
TEMPLATES: dict[str, list[dict[str, Any]]] = yaml.safe_load(RESPONSES.read_text(encoding="utf-8"))
STAGES = validation.stage_templates_of(seed_document())
CHANNELS = (None, *(c.value for c in Channel))
TONES = (None, "courteous", "neutral", "firm")
# What a hole looks like once rendered: a lone punctuation mark where a value was, empty
# brackets, a Python None, Jinja left-overs, two spaces where a word was dropped.
LEFTOVERS = re.compile(r"(?<=\s)[.,;:](?=\s|$)|\(\s*\)|\bNone\b|Undefined|\{\{|\}\}|\{%|%\}|  ")


def _contexts(name: str, language: str) -> list[dict[str, Any]]:
    return [
        {**runtime_variables(), "language": language, **context}
        for context in catalogue.sample_contexts(name, STAGES)
    ]


def _assert_complete(name: str, text: str) -> None:
    assert text.strip(), f"{name}: empty text"
    # French typography puts a space before ':' ';' and before '?' '!': only a ':' or ';' that
    # ends the text or stands between spaces without a word after it would be a hole.
    leftover = LEFTOVERS.search(text.replace(" : ", "\x00").replace(" ; ", "\x00"))
    assert leftover is None, f"{name}: hole {leftover.group()!r} in {text!r}"


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_variant_renders_completely_with_the_runtime_values(name: str) -> None:
    variants = TEMPLATES[name]
    assert validate_templates({name: variants}) == []
    for index, variant in enumerate(variants):
        for language in LANGUAGES:
            for context in _contexts(name, language):
                try:
                    text = render_source(
                        variant[language], name=name, language=language, context=context
                    )
                except TemplateFailed as failure:
                    pytest.fail(
                        f"{name}[{index}] ({language}) with {sorted(context)}: {failure.problem}"
                        " - pass the value from its callers and declare it in"
                        " relance/nlg/catalogue.py, or guard it with {% if %}"
                    )
                _assert_complete(f"{name}[{index}] ({language})", text)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_language_channel_and_tone_picks_a_complete_variant(name: str) -> None:
    for language in LANGUAGES:
        for context in _contexts(name, language):
            for channel in CHANNELS:
                for tone in TONES:
                    text = render(
                        TEMPLATES,
                        name,
                        language=language,
                        variables=context,
                        tone=tone,
                        channel=channel,
                        rng=random.Random(0),
                    )
                    _assert_complete(f"{name} ({language}, {channel}, {tone})", text)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_passes_the_wording_editor_validation(name: str) -> None:
    """What an admin could not save must not ship either (unknown values, opt-out notice)."""
    assert validation.wording_problems(TEMPLATES, [name], stage_templates=STAGES) == []


def test_every_outbound_text_template_tells_how_to_opt_out() -> None:
    """Reg F §1006.6(e): every electronic communication states how to opt out (US profile)."""
    outbound = sorted((catalogue.OUTBOUND | STAGES) & set(TEMPLATES))
    assert "utter_reminder_friendly" in outbound and "utter_whatsapp_first_contact" in outbound
    checked = 0
    for name in outbound:
        for variant in TEMPLATES[name]:
            if not validation.is_electronic(variant):
                continue
            for language in LANGUAGES:
                for context in _contexts(name, language):
                    text = render_source(
                        variant[language], name=name, language=language, context=context
                    )
                    assert re.search(r"\bSTOP\b", text), f"{name} ({language}): {text}"
                    checked += 1
    assert checked > 40


def test_the_reminders_say_reply_stop_in_english() -> None:
    friendly = render(
        TEMPLATES,
        "utter_reminder_friendly",
        language="en",
        channel="sms",
        variables={"invoice_refs": ["F-1"], "stage": "friendly"},
    )
    assert "Reply STOP to opt out" in friendly
