"""The domain, the action server and the wording agree with each other.

Rasa only finds out at run time that an action is missing or that the NLG endpoint has no
template for a response; these checks fail at test time instead.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import yaml
from rasa_sdk import Action

import actions
from actions.reminders import STAGES
from relance.nlg.renderer import validate_templates
from relance.nlg.templates_store import bundled_templates
from relance.policy.service import seed_policy

ROOT = Path(__file__).resolve().parents[2]
BUILTIN = {"action_listen", "action_restart", "action_deactivate_loop", "action_extract_slots"}


def _domain() -> dict:
    merged: dict = {"actions": [], "responses": {}, "forms": {}}
    for path in sorted((ROOT / "bot" / "domain").glob("*.yml")):
        part = yaml.safe_load(path.read_text(encoding="utf-8"))
        merged["actions"] += part.get("actions", [])
        merged["responses"].update(part.get("responses", {}))
        merged["forms"].update(part.get("forms", {}))
    return merged


def _registered_actions() -> set[str]:
    for module in pkgutil.iter_modules(actions.__path__):
        importlib.import_module(f"actions.{module.name}")
    names: set[str] = set()
    pending = list(Action.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        # Abstract bases (FormThatAsksBeforeLeaving) are skipped, as the action server does.
        if cls.__module__.startswith("actions.") and not inspect.isabstract(cls):
            names.add(cls().name())
    return names


def test_every_domain_action_is_implemented() -> None:
    declared = set(_domain()["actions"]) - BUILTIN
    assert declared - _registered_actions() == set()


def test_every_form_slot_has_a_question_action() -> None:
    domain = _domain()
    for form in domain["forms"].values():
        for slot in form["required_slots"]:
            assert f"action_ask_{slot}" in domain["actions"], slot


def test_domain_responses_are_placeholders_with_real_wording() -> None:
    templates = bundled_templates()
    for name, variants in _domain()["responses"].items():
        assert variants == [{"text": name}], name
        assert name in templates, name


def test_every_response_named_by_an_action_has_wording() -> None:
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "actions").glob("*.py"))
    named = set(re.findall(r'"(utter_[a-z_]+)"', source))
    named |= {f"utter_reminder_{stage}" for stage in STAGES}
    named.discard("utter_action")  # Rasa's metadata key for the response a bot message said
    assert named - set(bundled_templates()) == set()


def test_wording_is_valid_in_both_languages() -> None:
    assert validate_templates(bundled_templates()) == []


def test_policy_reminder_templates_exist() -> None:
    used = {stage.template for track in seed_policy().tracks for stage in track.stages}
    assert used - set(bundled_templates()) == set()
