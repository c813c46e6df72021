"""`and_list`: several invoices named as a list of the debtor's language ("F-1 et F-2").

It is a filter of the one sandbox both the runtime and the wording editor's validation use.
"""

from __future__ import annotations

import pytest

from relance.languages import LANGUAGES
from relance.nlg import validation
from relance.nlg.formatting import and_list
from relance.nlg.renderer import TemplateFailed, render_source


@pytest.mark.parametrize(
    ("items", "language", "expected"),
    [
        (["F-1"], "fr", "F-1"),
        (["F-1", "F-2"], "fr", "F-1 et F-2"),
        (["F-1", "F-2", "F-3"], "fr", "F-1, F-2 et F-3"),
        (["F-1"], "en", "F-1"),
        (["F-1", "F-2"], "en", "F-1 and F-2"),
        (["F-1", "F-2", "F-3"], "en", "F-1, F-2 and F-3"),  # en_GB: no comma before "and"
        ("F-1", "fr", "F-1"),  # one number given as text is one item, not five letters
        ((1001, 1002), "fr", "1001 et 1002"),
        ([], "fr", ""),
        (None, "fr", ""),
    ],
)
def test_and_list_writes_a_list_as_the_language_does(
    items: object, language: str, expected: str
) -> None:
    assert and_list(items, language) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_filter_exists_where_templates_render_and_where_admins_edits_are_validated(
    language: str,
) -> None:
    source = "Rappel : {{ invoice_refs | and_list }}. STOP"
    joined = {"fr": "F-1 et F-2", "en": "F-1 and F-2"}[language]
    rendered = render_source(
        source, name="x", language=language, context={"invoice_refs": ["F-1", "F-2"]}
    )
    assert rendered == f"Rappel : {joined}. STOP"
    edited = {"utter_reminder_friendly": [{lang: source for lang in LANGUAGES}]}
    assert validation.wording_problems(edited) == []


def test_and_list_of_a_missing_or_empty_list_is_a_hole_not_a_sentence() -> None:
    for context in ({}, {"invoice_refs": []}):
        with pytest.raises(TemplateFailed):
            render_source(
                "la facture {{ invoice_refs | and_list }} reste due",
                name="x",
                language="fr",
                context=context,
            )
