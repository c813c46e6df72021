"""Policy checks that belong to the wording: a stage naming a response that does not exist."""

from __future__ import annotations

from relance.nlg.templates_store import bundled_templates
from relance.nlg.validation import missing_stage_templates


def test_a_stage_naming_no_existing_response_is_reported_with_its_path() -> None:
    templates = bundled_templates()
    known = next(iter(templates))
    document = {
        "tracks": [
            {"name": "b2c", "stages": [{"key": "friendly", "template": known}]},
            {"name": "b2b", "stages": [{"key": "final", "template": "utter_nowhere"}, None]},
        ]
    }
    assert missing_stage_templates(document, templates) == [
        "tracks.b2b.final: template utter_nowhere does not exist"
    ]
    assert missing_stage_templates({}, templates) == []
