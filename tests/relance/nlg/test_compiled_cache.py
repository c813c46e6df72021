"""Compiled variants are reused: compiling dominated the cost of an e-mail (issue 19's
throughput), and an edited wording must never be served from a stale compilation."""

from __future__ import annotations

import pytest

from relance.nlg import renderer


def test_the_same_variant_is_compiled_once_and_an_edit_is_a_new_one() -> None:
    renderer._compiled.cache_clear()
    context = {"name": "Léa"}
    for _ in range(5):
        assert (
            renderer.render_source("Bonjour {{ name }}", name="x", language="fr", context=context)
            == "Bonjour Léa"
        )
    assert renderer._compiled.cache_info().misses == 1
    assert renderer._compiled.cache_info().hits == 4
    edited = renderer.render_source("Bonsoir {{ name }}", name="x", language="fr", context=context)
    assert edited == "Bonsoir Léa"
    assert renderer._compiled.cache_info().misses == 2


def test_a_template_that_does_not_compile_still_fails_every_time() -> None:
    """lru_cache keeps no exception: a broken variant is reported at each render, not once."""
    for _ in range(2):
        with pytest.raises(renderer.TemplateFailed):
            renderer.render_source("{% if %}", name="x", language="en", context={})
