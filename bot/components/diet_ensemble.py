"""DIET ensemble: several DIET classifiers trained with different seeds, their intents averaged.

Why: one DIET training is one draw. On the blind held-out set (bench/nlu_heldout) the same data
and config scored up to 1.7 points apart from one `random_seed` to another (BENCHMARKS.md), so
which model shipped was a lottery. Averaging the members' intent probabilities is the standard
way to trade training time for a steadier model. Measured so far (BENCHMARKS.md, "DIET
ensemble"): two ensemble draws, both above 95 % in both languages on the shipped data; on the
older data one draw scored fr +0.3 / en +0.6 points above the single-DIET mean, which is within
one draw's spread. Averaging also lowers the top confidence when members disagree, which the
FallbackClassifier thresholds see; that rate has not been measured.

Rasa's own validator knows DIET by its class: with this component `rasa train` warns that no
entity extractor uses the entity examples or the lookup tables. Both warnings are false here.

Config (bot/config.yml): DIET's own options, plus `ensemble_size` (default 3). Member `i` is a
plain DIETClassifier with `random_seed + i`. Intents: the mean of the members' full rankings,
cut to `ranking_length`. Entities: the first member's that had features for the message (the
members would disagree on spans, and averaging tags is not meaningful); the RegexEntityExtractor
and the actions' normalisation do the rest, as before.

The members are stored inside the ensemble's own resource folder: Rasa's training cache saves
and restores a component's resource whole, so members kept elsewhere would be lost on a
cached retrain (for example when only stories change).

This relies on DIETClassifier's `_predict`, `_predict_label` and `_predict_entities`, which are
private: Rasa is pinned to 3.6.21 (requirements/rasa.txt), and the CI model and the test stories
exercise this component on every run.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.classifiers.diet_classifier import DIETClassifier
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.nlu.featurizers.featurizer import Featurizer
from rasa.shared.constants import DIAGNOSTIC_DATA
from rasa.shared.nlu.constants import ENTITIES, EXTRACTOR, INTENT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.utils.tensorflow.constants import (
    ENTITY_RECOGNITION,
    INTENT_CLASSIFICATION,
    RANDOM_SEED,
    RANKING_LENGTH,
)

from bot.components.ranking import average_rankings

ENSEMBLE_SIZE = "ensemble_size"
INTENT_RANKING = "intent_ranking"
# DIETClassifier.create, or DIETClassifier.load with its extra arguments bound: (config,
# storage, resource, execution context) -> member.
MemberFactory = Callable[[dict[str, Any], Any, Resource, ExecutionContext], DIETClassifier]


class _MemberStorage:
    """A member's view of the model storage: a sub-folder of the ensemble's resource.

    DIETClassifier only calls `write_to` and `read_from`; both are given here.
    """

    def __init__(self, storage: ModelStorage, ensemble: Resource) -> None:
        self._storage = storage
        self._ensemble = ensemble

    @contextlib.contextmanager
    def write_to(self, resource: Resource) -> Iterator[Path]:
        with self._storage.write_to(self._ensemble) as folder:
            member = folder / resource.name
            member.mkdir(exist_ok=True)
            yield member

    @contextlib.contextmanager
    def read_from(self, resource: Resource) -> Iterator[Path]:
        with self._storage.read_from(self._ensemble) as folder:
            member = folder / resource.name
            if not member.is_dir():
                # DIETClassifier.load treats ValueError as "not trained", as Rasa's storage does.
                raise ValueError(f"ensemble member '{resource.name}' was not persisted")
            yield member


def member_config(config: dict[str, Any], index: int) -> dict[str, Any]:
    """Member `index`'s DIET config: the ensemble's, with its own seed and a full ranking (the
    ensemble averages every intent before cutting to `ranking_length`)."""
    seed = config.get(RANDOM_SEED)
    if not isinstance(seed, int):
        raise ValueError(
            f"DIETEnsembleClassifier needs an integer {RANDOM_SEED} (members use it, +1, +2…), "
            f"not {seed!r}"
        )
    member = {key: value for key, value in config.items() if key != ENSEMBLE_SIZE}
    member[RANDOM_SEED] = seed + index
    member[RANKING_LENGTH] = 0
    return member


@DefaultV1Recipe.register(
    [
        DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER,
        DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR,
    ],
    is_trainable=True,
)
class DIETEnsembleClassifier(GraphComponent, IntentClassifier, EntityExtractorMixin):
    """`ensemble_size` DIET classifiers with consecutive seeds; intents averaged."""

    @classmethod
    def required_components(cls) -> list[type]:
        return [Featurizer]

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str:
        """Rasa's training cache keys a component on its class's source only; the members'
        configs and storage are built by this module's functions, so the key covers the whole
        module (and the averaging it imports)."""
        digest = hashlib.sha256()
        for module in (Path(__file__), Path(__file__).with_name("ranking.py")):
            digest.update(module.read_bytes())
        return digest.hexdigest()

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {**DIETClassifier.get_default_config(), ENSEMBLE_SIZE: 3, RANDOM_SEED: 42}

    def __init__(
        self,
        config: dict[str, Any],
        members: list[DIETClassifier],
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> None:
        self.component_config = config
        self._members = members
        self._resource = resource
        self._execution_context = execution_context

    @classmethod
    def _members_for(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        make: MemberFactory,
    ) -> list[DIETClassifier]:
        size = int(config[ENSEMBLE_SIZE])
        if size < 1:
            raise ValueError(f"{ENSEMBLE_SIZE} must be at least 1, not {size}")
        storage = _MemberStorage(model_storage, resource)
        return [
            make(member_config(config, i), storage, Resource(f"member_{i}"), execution_context)
            for i in range(size)
        ]

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> DIETEnsembleClassifier:
        members = cls._members_for(
            config, model_storage, resource, execution_context, DIETClassifier.create
        )
        return cls(config, members, resource, execution_context)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> DIETEnsembleClassifier:
        load_member = functools.partial(DIETClassifier.load, **kwargs)
        members = cls._members_for(config, model_storage, resource, execution_context, load_member)
        missing = [index for index, member in enumerate(members) if member.model is None]
        if missing and len(missing) < len(members):
            # DIETClassifier.load answers a missing model with an untrained member (logged at
            # debug level): the average would quietly lose a voter. An incomplete model is an
            # error; a wholly untrained ensemble (no NLU data) stays silent, as DIET does.
            raise ValueError(
                f"{resource.name}: ensemble members {missing} have no trained model; "
                "the model archive is incomplete, retrain it"
            )
        return cls(config, members, resource, execution_context)

    def train(self, training_data: TrainingData) -> Resource:
        """Train every member on the same data; each persists itself in its sub-folder."""
        for member in self._members:
            member.train(training_data)
        return self._resource

    def process(self, messages: list[Message]) -> list[Message]:
        """Set the averaged intent and ranking, and the entities of the first member that had
        features for the message."""
        ranking_length = int(self.component_config[RANKING_LENGTH])
        for message in messages:
            outputs = [member._predict(message) for member in self._members]
            if self.component_config[INTENT_CLASSIFICATION]:
                ranking = average_rankings(
                    [
                        member._predict_label(output)[1]
                        for member, output in zip(self._members, outputs, strict=True)
                    ]
                )
                if ranking_length > 0:
                    ranking = ranking[:ranking_length]
                label = dict(ranking[0]) if ranking else {"name": None, "confidence": 0.0}
                message.set(INTENT, label, add_to_output=True)
                message.set(INTENT_RANKING, ranking, add_to_output=True)
            if self.component_config[ENTITY_RECOGNITION]:
                first = next((i for i, output in enumerate(outputs) if output is not None), 0)
                entities = self._members[first]._predict_entities(outputs[first], message)
                for entity in entities:
                    if entity.get(EXTRACTOR) == DIETClassifier.__name__:
                        entity[EXTRACTOR] = self.name
                message.set(ENTITIES, entities, add_to_output=True)
            if outputs[0] and self._execution_context.should_add_diagnostic_data:
                message.add_diagnostic_data(
                    self._execution_context.node_name, outputs[0].get(DIAGNOSTIC_DATA)
                )
        return messages
