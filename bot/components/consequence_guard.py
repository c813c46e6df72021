"""ConsequenceGuard: a consequential intent with weak evidence becomes `confirm_consequential`.

Placed after the FallbackClassifier. When the top intent is one whose action changes the
debtor's file (bot/components/evidence.py: opt-out, dispute, already paid, wrong person, promise,
plan acceptance) and its confidence is under that intent's threshold, or the message holds no cue
of its domain, the intent becomes CONFIRM_INTENT and is put first in the ranking, the way the
FallbackClassifier puts `nlu_fallback` first: the guarded intent stays second, so the action
that asks for confirmation (actions/confirmation.py) knows which question to ask and, on "yes",
replays the message with that intent.

A question about the message's legitimacy ("is this a scam?", "c'est une arnaque ?") is read as
`bot_challenge` whatever DIET said short of an opt-out, a wrong person or a request for a human
(evidence.legitimacy_relabel): DIET reads it as a dispute, which it is not.

A greeting that opens a request ("Hello, how much do I owe?"), read by DIET as `greet` or split
between the two (nlu_fallback), is read as the request when DIET's next reading is a business
intent (evidence.request_behind_greeting); a consequential one then goes through the same check.

A thank-you, a goodbye, a question about the fees or a request for an invoice copy read by DIET
without confidence in a message holding no word of it ("thats a lot" as goodbye, "whats the
oldest invoice" as a copy request) is read as DIET's next request, or as nlu_fallback
(evidence.topic_relabel): each of these answers fits only its own kind of message. A promise
reading of a message that opens by asking when ("when is the first payment?") is the question
about the debt's dates (evidence.when_question_relabel). A message left to nlu_fallback that asks
about an invoice is the details question (evidence.invoice_question).

Thresholds are per intent (`thresholds`, else `default_threshold`); bench/nlu/offtopic.py tunes
them on the CLINC150 oos_train split and writes the values found into bot/config*.yml.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message

from bot.components.evidence import (
    CONFIRM_INTENT,
    FALLBACK_INTENT,
    RELABELLED,
    invoice_question,
    is_weak,
    legitimacy_relabel,
    request_behind_greeting,
    topic_relabel,
    when_question_relabel,
)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class ConsequenceGuard(GraphComponent, IntentClassifier):
    """Re-labels consequential predictions made on weak evidence (see the module docstring)."""

    @classmethod
    def required_components(cls) -> list[type]:
        return [IntentClassifier]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"default_threshold": 0.9, "thresholds": {}}

    def __init__(self, config: dict[str, Any]) -> None:
        self.component_config = config
        self.default_threshold = float(config["default_threshold"])
        self.thresholds = {str(k): float(v) for k, v in (config.get("thresholds") or {}).items()}

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ConsequenceGuard:
        return cls(config)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            intent = message.data.get(INTENT) or {}
            name = intent.get(INTENT_NAME_KEY)
            confidence = float(intent.get(PREDICTED_CONFIDENCE_KEY) or 0.0)
            text = str(message.data.get(TEXT) or "")
            relabelled = legitimacy_relabel(name, text)
            if relabelled is not None:
                # Answered like "are you a bot?": who the assistant works for, how to check.
                _read_as(message, relabelled, confidence)
                continue
            ranking = [
                (str(r.get(INTENT_NAME_KEY)), float(r.get(PREDICTED_CONFIDENCE_KEY) or 0.0))
                for r in message.data.get(INTENT_RANKING_KEY) or []
            ]
            # "Bonjour, combien je dois ?": the request, not the greeting, is answered. "thats
            # a lot" is no goodbye, "whats the oldest invoice" no copy request.
            reading = request_behind_greeting(ranking, text)
            if reading is None and name is not None and name != FALLBACK_INTENT:
                reading = topic_relabel(ranking, text)
            if reading is not None:
                name, confidence = reading
                _read_as(message, name, confidence)
            # "when is the first payment?" asks for a date, it promises none.
            question = when_question_relabel(name, text)
            if question is not None:
                name = question
                _read_as(message, name, confidence)
            # "c quoi la facture la plus ancienne": ambiguous to DIET, a question all the same.
            if name == FALLBACK_INTENT and (details := invoice_question(ranking, text)):
                name = details
                _read_as(message, name, confidence)
            if name is None or not is_weak(
                name, confidence, text, self.thresholds, self.default_threshold
            ):
                continue
            guarded = {INTENT_NAME_KEY: CONFIRM_INTENT, PREDICTED_CONFIDENCE_KEY: confidence}
            message.data[INTENT] = guarded
            message.data.setdefault(INTENT_RANKING_KEY, [])
            message.data[INTENT_RANKING_KEY].insert(0, dict(guarded))
        return messages


def _read_as(message: Message, name: str, confidence: float) -> None:
    """The message's intent is `name`, first in the ranking and marked as the guard's reading."""
    message.data[INTENT] = {INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: confidence}
    message.data.setdefault(INTENT_RANKING_KEY, [])
    message.data[INTENT_RANKING_KEY].insert(0, {**message.data[INTENT], RELABELLED: True})
