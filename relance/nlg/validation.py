"""Wording validation: what an admin's edit must pass before it is stored.

Beyond syntax (`renderer.validate_templates`), each variant is rendered, in every language, with
the values the runtime really passes to that response (`catalogue.sample_contexts`): a variant
that names a value the runtime never gives, prints an optional one without a guard, uses an
unknown filter or fails in any other way is refused with the reason, so nothing saved can fail
later when a debtor writes HELP or a reminder goes out.

US opt-out notice (Regulation F, 12 CFR §1006.6(e)): every electronic communication to a US
consumer must state a simple way to opt out of further electronic communications. Decision:
the notice is required *in the text* of every outbound response (`catalogue.OUTBOUND` and every
template a dunning policy stage names) for every variant a text channel can use (no channel, SMS,
WhatsApp), in every language; it is not appended by the renderer. Why: (1) templates are shared
by every jurisdiction and the NLG endpoint does not know the debtor's profile, so the only way
to be sure a US debtor never gets a reminder without it is that no reminder lacks it (French
debtors see the same sentence, which is also how STOP works for them); (2) what the admin
previews and saves is exactly what is sent and stored in the transcript, and the approved
WhatsApp template text matches the local copy; (3) a machine check on the saved text is simple
to prove. The notice must name the STOP keyword, which `messaging/keywords.py` honours on SMS
and WhatsApp in both languages. Voice variants are exempt (a call is not an electronic
communication in the sense of §1006.6(e)).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from jinja2 import TemplateError, meta

from relance.languages import LANGUAGES
from relance.nlg import catalogue
from relance.nlg.renderer import (
    TemplateFailed,
    environment,
    render_source,
    runtime_variables,
    validate_templates,
)
from relance.nlg.templates_store import Templates

OPT_OUT_KEYWORD = "STOP"
_OPT_OUT = re.compile(rf"\b{OPT_OUT_KEYWORD}\b")
ELECTRONIC_CHANNELS = frozenset({"sms", "whatsapp", "email"})


def is_electronic(variant: dict[str, Any]) -> bool:
    """A variant a text channel may send: no channel (any), or an electronic one."""
    return not variant.get("channel") or variant.get("channel") in ELECTRONIC_CHANNELS


def needs_opt_out_notice(name: str, stage_templates: frozenset[str] = frozenset()) -> bool:
    return name in catalogue.OUTBOUND or name in stage_templates


def stage_templates_of(policy_document: dict[str, Any] | None) -> frozenset[str]:
    """Every response a dunning policy's stages name (all of them are sent on our initiative)."""
    names = set()
    for track in (policy_document or {}).get("tracks") or []:
        for stage in (track or {}).get("stages") or []:
            if isinstance(stage, dict) and isinstance(stage.get("template"), str):
                names.add(stage["template"])
    return frozenset(names)


def wording_problems(
    templates: Templates,
    names: Iterable[str] | None = None,
    *,
    stage_templates: frozenset[str] = frozenset(),
) -> list[str]:
    """Readable problems of the responses `names` (default: all) of `templates`; [] when valid."""
    checked = {n: templates[n] for n in (templates if names is None else names) if n in templates}
    problems = validate_templates(checked)
    broken = {p.split(":", 1)[0] for p in problems}
    for name, variants in checked.items():
        if not isinstance(variants, list):
            continue
        for i, variant in enumerate(variants):
            if not isinstance(variant, dict):
                problems.append(f"{name}[{i}]: a variant must be a mapping with fr and en texts")
                continue
            for language in LANGUAGES:
                if f"{name}[{i}] ({language})" in broken or f"{name}[{i}]" in broken:
                    continue
                problems += _variant_problems(name, i, variant, language, stage_templates)
    return problems


def _variant_problems(
    name: str, index: int, variant: dict[str, Any], language: str, stage_templates: frozenset[str]
) -> list[str]:
    where = f"{name}[{index}] ({language})"
    source = variant[language]
    try:
        used = meta.find_undeclared_variables(environment(language).parse(source))
    except TemplateError as exc:  # pragma: no cover - validate_templates reported it
        return [f"{where}: {exc}"]
    unknown = sorted(used - catalogue.provided(name, stage_templates).names)
    if unknown:
        listed = ", ".join(f"{{{{ {u} }}}}" for u in unknown)
        return [f"{where}: uses {listed}, which the application never passes to {name}"]
    texts: list[str] = []
    for context in catalogue.sample_contexts(name, stage_templates):
        try:
            texts.append(
                render_source(
                    source,
                    name=name,
                    language=language,
                    context={**runtime_variables(), "language": language, **context},
                )
            )
        except TemplateFailed as failure:
            return [f"{where}: fails when rendered with sample data: {failure.problem}"]
    opt_out_needed = needs_opt_out_notice(name, stage_templates) and is_electronic(variant)
    if opt_out_needed and not all(_OPT_OUT.search(text) for text in texts):
        return [
            f"{where}: an outbound text message must tell how to opt out "
            f'(e.g. "Reply {OPT_OUT_KEYWORD} to opt out"), required by Regulation F '
            "§1006.6(e) for US debtors"
        ]
    return []


def missing_stage_templates(document: dict[str, Any], templates: Templates) -> list[str]:
    """'No stage without a template': every stage of a policy document names a response that exists.

    Here, beside the wording checks, so the console page and any other editor of the policy apply
    the same rule (it lived in the console's preview module)."""
    problems = []
    for track in document.get("tracks") or []:
        for stage in (track or {}).get("stages") or []:
            name = (stage or {}).get("template")
            if name and name not in templates:
                problems.append(
                    f"tracks.{track.get('name')}.{stage.get('key')}: template {name} does not exist"
                )
    return problems
