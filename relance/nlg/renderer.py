"""Render a named response in the debtor's language, tone and channel.

Templates are Jinja2 in a sandbox (admins edit them), with `money`, `date` and `and_list` filters
that format per locale (`and_list` names several invoices "F-1 et F-2" / "F-1 and F-2"). A
variant is chosen by channel (voice has spoken variants without URLs) then tone.

A sentence with a hole ("please call ." when the phone number was missing) is worse than no
sentence: it reads as broken and may say something else than meant. So rendering is strict:
a missing, `None` or blank value printed by a template, a loop over a missing list, a leftover
lone punctuation mark where a value should have been, a filter that fails (a date that is not a
date) all raise `TemplateFailed` instead of returning text. Missing values may still be *tested*
(`{% if pay_url %}`): that is how a template says a part is optional. Every caller therefore
either gets a complete sentence or an error it must handle (and none sends a holed sentence).

The creditor's identity (`creditor_name`, `creditor_phone`, from settings) is provided to every
template by the renderer itself, so no caller can forget it (the unknown-number reply once did).
"""

from __future__ import annotations

import functools
import logging
import random
import re
from collections.abc import Mapping
from typing import Any, NoReturn

from jinja2 import (
    ChainableUndefined,
    Template,
    TemplateError,
    TemplateSyntaxError,
    Undefined,
    nodes,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from relance.languages import LANGUAGES
from relance.nlg.formatting import and_list, long_date, long_datetime, money
from relance.nlg.templates_store import ActiveTemplates, Templates

log = logging.getLogger(__name__)

# A value was left out between two words and a punctuation mark: " ." / " ," alone, or "()".
HOLE_PATTERN = re.compile(r"(?:(?<=\s)[.,](?=\s|$))|\(\s*\)")


class UnknownResponse(KeyError):
    """The response name has no template at all."""


class TemplateFailed(TemplateError):
    """This response cannot be rendered into a complete sentence (never send a partial one).

    A `TemplateError` so callers that already handled Jinja errors handle this one too.
    """

    def __init__(self, name: str, language: str, problem: str) -> None:
        super().__init__(f"{name} ({language}): {problem}")
        self.name = name
        self.language = language
        self.problem = problem


class _Hole(TemplateError):
    """A printed value is empty (raised inside rendering, reported as `TemplateFailed`)."""


class _StrictUndefined(ChainableUndefined):
    """A missing variable: false in a test and chainable (`x.y`), never printed nor iterated."""

    __slots__ = ()

    def _missing(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise _Hole(f"{self._undefined_name or 'a value'} is missing")

    __str__ = _missing
    __iter__ = _missing


def _no_hole(value: Any) -> Any:
    """Jinja's `finalize`: every `{{ ... }}` passes here before it becomes text."""
    if isinstance(value, Undefined):
        raise _Hole(f"{value._undefined_name or 'a value'} is missing")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _Hole("a printed value is empty")
    return value


def _given(value: Any) -> Any:
    """A filter's input: a missing value is named in the error (`finalize` only sees '')."""
    if isinstance(value, Undefined):
        raise _Hole(f"{value._undefined_name or 'a value'} is missing")
    return value


# Jinja's own filters a wording may use: none of them takes a size (`center`, `indent`,
# `wordwrap`, `format`, `replace`... turn a short template into gigabytes of text).
SAFE_FILTERS = frozenset(
    {
        "abs", "capitalize", "count", "d", "default", "e", "escape", "first", "float", "int",
        "join", "last", "length", "lower", "max", "min", "reverse", "round", "sort", "string",
        "sum", "title", "trim", "unique", "upper",
    }
)  # fmt: skip
# The longest text or list an operator may build; an SMS is 1,600 characters at most.
MAX_BUILT_LENGTH = 10_000
MAX_POWER_BITS = 1_000


def _binop_problem(operator: str, left: Any, right: Any) -> str | None:
    """Why `left operator right` may not run in a wording, or None."""
    sized, times = (right, left) if isinstance(right, (str, list, tuple)) else (left, right)
    if operator == "*" and isinstance(sized, (str, list, tuple)) and isinstance(times, int):
        if len(sized) * times > MAX_BUILT_LENGTH:
            return f"a repetition may build at most {MAX_BUILT_LENGTH} items"
    elif operator == "**" and isinstance(left, int) and isinstance(right, int):
        if right > 0 and max(abs(left), 2).bit_length() * right > MAX_POWER_BITS:
            return f"a power may have at most {MAX_POWER_BITS} bits"
    elif operator == "%" and isinstance(left, str):
        return "text formatting with % is not allowed; print the values"
    return None


class _WordingSandbox(SandboxedEnvironment):
    """Jinja's sandbox stops attribute escapes, not resource exhaustion, and admins write these
    templates: `{{ 'x' * 10**10 }}` or `{{ 'x'.ljust(10**10, 'y') }}` filled the api's memory,
    `{{ 99999 ** 99999 ** 99 }}` and loops nested over long literals its CPU, at save (validation
    renders the variant) and at every send. So a wording calls nothing (no function, method or
    macro), nests no loop and loops only over values it is given, and its operators refuse to
    build more than `MAX_BUILT_LENGTH` items or a power above `MAX_POWER_BITS` bits."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        problem = _binop_problem(operator, left, right)
        if problem:
            raise SecurityError(problem)
        return super().call_binop(context, operator, left, right)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for node in tree.find_all((nodes.Call, nodes.Macro, nodes.CallBlock)):
            raise TemplateSyntaxError(
                "a wording calls no function, method or macro", node.lineno, name, filename
            )
        for loop in tree.find_all(nodes.For):
            if loop.recursive or any(True for _ in loop.find_all(nodes.For)):
                raise TemplateSyntaxError(
                    "a wording nests no loop and has no recursive loop", loop.lineno, name, filename
                )
            if not isinstance(loop.iter, (nodes.Name, nodes.Getattr)):
                raise TemplateSyntaxError(
                    "a wording loops only over a value it is given ({% for x in invoices %})",
                    loop.lineno,
                    name,
                    filename,
                )
        return tree


def _environment(language: str) -> SandboxedEnvironment:
    env = _WordingSandbox(undefined=_StrictUndefined, autoescape=False, finalize=_no_hole)
    env.globals.clear()  # range, lipsum, cycler, joiner, namespace, dict: nothing to call
    env.filters = {name: f for name, f in env.filters.items() if name in SAFE_FILTERS}
    env.filters["money"] = lambda amount, currency="EUR": money(
        _given(amount), _given(currency), language
    )
    env.filters["date"] = lambda value: long_date(_given(value), language)
    env.filters["datetime"] = lambda value: long_datetime(_given(value), language)
    env.filters["and_list"] = lambda items: and_list(_given(items), language)
    return env


_ENVIRONMENTS = {lang: _environment(lang) for lang in LANGUAGES}


def environment(language: str) -> SandboxedEnvironment:
    """The sandbox templates of `language` render in (validation compiles with the same one)."""
    return _ENVIRONMENTS[language if language in LANGUAGES else "fr"]


def runtime_variables() -> dict[str, Any]:
    """What every template may use whoever renders it: the creditor's identity, from settings."""
    from relance.settings import get_settings

    settings = get_settings()
    return {"creditor_name": settings.creditor_name, "creditor_phone": settings.creditor_phone}


@functools.cache
def _shared_rng() -> random.Random:
    """One generator for the process, made on first use. A `random.Random()` per reply seeds
    itself from 2.5 KB of the OS's randomness: 20-190 µs each, the largest single cost of an
    e-mail in the dispatcher's batches (issue 19's profile); which variant a debtor reads needs
    no fresh seed."""
    return random.Random()


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


@functools.lru_cache(maxsize=4096)
def _compiled(language: str, source: str) -> Template:
    """A variant compiled once per language: compiling is most of the cost of a render (the
    e-mail benchmark spent more time in Jinja's compiler than in SMTP). Keyed by the source
    itself, so an edited wording is a new entry, never a stale one; the bound keeps a console
    that edits wording all day from growing it without limit."""
    return environment(language).from_string(source)


def render_source(source: str, *, name: str, language: str, context: Mapping[str, Any]) -> str:
    """One variant's text for one language; `TemplateFailed` unless it is a complete sentence."""
    try:
        text = _compiled(language, source).render(dict(context)).strip()
    except Exception as exc:  # a Jinja error, a hole, or a filter given a value it cannot format
        raise TemplateFailed(name, language, _describe(exc)) from exc
    hole = HOLE_PATTERN.search(text)
    if hole is not None:
        raise TemplateFailed(name, language, f"a value is missing before {hole.group()!r}: {text}")
    if not text:
        raise TemplateFailed(name, language, "the text is empty")
    return text


def _describe(exc: Exception) -> str:
    return str(exc) if isinstance(exc, TemplateError) else f"{type(exc).__name__}: {exc}"


def render(
    templates: Templates,
    name: str,
    *,
    language: str,
    variables: Mapping[str, Any] | None = None,
    tone: str | None = None,
    channel: str | None = None,
    rng: random.Random | None = None,
    variant_index: int | None = None,
) -> str:
    """The text of response `name`, or `UnknownResponse` / `TemplateFailed`.

    `variant_index` names the variant to send instead of a random pick among the best matches:
    an experiment's arm (relance/experiments) sends its own variant, to the debtor's reminder and
    to the assistant's replies alike. An index the template no longer has (the wording was edited
    during the experiment) is logged and the usual pick is made: the debtor still gets an answer.

    When `templates` are the active ones and the admin's edited version of `name` fails at
    render time (it was stored before validation rendered variants, or the live values differ
    from the sample ones), the shipped default wording of that one response is sent instead and
    the failure is logged, audited (`wording.override_failed`) and shown on the console's
    wording page. Not a silent fallback: the alternative, no answer at all, would leave a debtor
    asking HELP or a reminder without the legally required text; the shipped default is the
    wording the project tests in every language and channel (tests/relance/nlg/test_every_template.py).
    """
    variants = templates.get(name)
    if not variants:
        raise UnknownResponse(name)
    language = language if language in LANGUAGES else "fr"
    if variant_index is not None and 0 <= variant_index < len(variants):
        variant = variants[variant_index]
    else:
        if variant_index is not None:
            log.warning("%s has no variant %s: usual choice made", name, variant_index)
        variant = choose_variant(variants, tone=tone, channel=channel, rng=rng or _shared_rng())
    source = variant.get(language) or variant.get("fr") or variant.get("en") or ""
    context = {**runtime_variables(), **(variables or {})}
    context.setdefault("language", language)
    try:
        return render_source(source, name=name, language=language, context=context)
    except TemplateFailed as failure:
        if not isinstance(templates, ActiveTemplates) or name not in templates.overridden:
            log.error("response %s cannot be rendered: %s", name, failure)
            raise
        log.error("edited response %s fails, sending the shipped default: %s", name, failure)
        templates.report_override_failure(name, language, failure.problem)
        return render(
            templates.bundled,
            name,
            language=language,
            variables=variables,
            tone=tone,
            channel=channel,
            rng=rng,
            variant_index=variant_index,
        )


def validate_templates(templates: Templates) -> list[str]:
    """Problems an admin must fix before saving: missing language, bad syntax, unknown filter.

    Compiles (not only parses) each text, so an unknown filter is caught here; rendering with
    the runtime's variables is checked by `relance.nlg.validation`.
    """
    problems: list[str] = []
    for name, variants in templates.items():
        if not isinstance(variants, list) or not variants:
            problems.append(f"{name}: needs at least one variant")
            continue
        for i, variant in enumerate(variants):
            for lang in LANGUAGES:
                text = variant.get(lang) if isinstance(variant, dict) else None
                if not text or not isinstance(text, str):
                    problems.append(f"{name}[{i}]: missing {lang} text")
                    continue
                try:
                    environment(lang).from_string(text)
                except TemplateError as exc:
                    problems.append(f"{name}[{i}] ({lang}): {exc}")
    return problems
