"""Run by the Rasa venv's Python (test_diet_ensemble.py): train a two-member DIET ensemble on a
tiny data set, persist it, load it back, and print what the test checks as JSON.

It reports the loaded ensemble's ranking for one message, and each member's own full ranking,
loaded alone from the ensemble's storage. It does no checking itself: the app's pytest does.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.classifiers.diet_classifier import DIETClassifier
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import (
    CountVectorsFeaturizer,
)
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.components.diet_ensemble import DIETEnsembleClassifier, _MemberStorage, member_config

EXAMPLES = {
    "greet": ["bonjour", "salut", "hello", "hi there", "bonsoir madame"],
    "cannot_pay": ["je ne peux pas payer", "pas d'argent ce mois", "i cannot pay", "i am broke"],
    "inform": ["200 euros", "cent euros", "50 euros", "300 euros"],
    "already_paid": ["j'ai deja paye", "c'est regle", "i already paid", "paid it last week"],
}
QUESTION = "bonjour je ne peux pas payer"


def main(folder: Path) -> None:
    storage = LocalModelStorage(folder)
    context = ExecutionContext(GraphSchema({}), "roundtrip")
    tokenizer = WhitespaceTokenizer.create(
        WhitespaceTokenizer.get_default_config(), storage, Resource("tokens"), context
    )
    featurizer = CountVectorsFeaturizer.create(
        CountVectorsFeaturizer.get_default_config(), storage, Resource("counts"), context
    )
    data = TrainingData(
        [
            Message(data={"text": text, "intent": intent, "entities": _amount(text, intent)})
            for intent, texts in EXAMPLES.items()
            for text in texts
        ]
    )
    tokenizer.process_training_data(data)
    featurizer.train(data)
    featurizer.process_training_data(data)

    config = {
        **DIETEnsembleClassifier.get_default_config(),
        "epochs": 3,
        # The smallest DIET that still has every part the ensemble wraps (intent head, CRF entity
        # head): TensorFlow traces each member's graph, and the default two 256-wide transformer
        # layers made that trace most of this test's minutes.
        "number_of_transformer_layers": 0,
        "hidden_layers_sizes": {"text": [], "label": []},
        "embedding_dimension": 8,
        "ensemble_size": 2,
        "random_seed": 5,
        "ranking_length": 2,
    }
    ensemble = Resource("ensemble")
    DIETEnsembleClassifier.create(config, storage, ensemble, context).train(data)
    loaded = DIETEnsembleClassifier.load(config, storage, ensemble, context)

    def featurized(text: str = QUESTION) -> Message:
        message = Message(data={"text": text})
        tokenizer.process([message])
        featurizer.process([message])
        return message

    message = loaded.process([featurized()])[0]
    amount = loaded.process([featurized("100 euros")])[0]
    members = []
    for index in range(2):
        member = DIETClassifier.load(
            member_config(config, index),
            _MemberStorage(storage, ensemble),
            Resource(f"member_{index}"),
            context,
        )
        members.append(member.process([featurized()])[0].get("intent_ranking"))
    print(
        json.dumps(
            {
                "intent": message.get("intent"),
                "ranking": message.get("intent_ranking"),
                "members": members,
                "stored": sorted(p.name for p in (folder / ensemble.name).iterdir()),
                "fingerprint_addon": DIETEnsembleClassifier.fingerprint_addon(config),
                "intent_is_a_copy": message.get("intent") is not message.get("intent_ranking")[0],
                "entity_extractors": sorted({e["extractor"] for e in amount.get("entities")}),
                "incomplete": _load_without_member_1(folder, storage, config, context),
            }
        )
    )


def _amount(text: str, intent: str) -> list[dict]:
    """The amount entity of an `inform` example ("200 euros": the number)."""
    if intent != "inform":
        return []
    number = text.split()[0]
    return [{"start": 0, "end": len(number), "value": number, "entity": "amount"}]


def _load_without_member_1(
    folder: Path, storage: LocalModelStorage, config: dict, context: ExecutionContext
) -> str:
    """Load after deleting one member's folder: the error's text, or "" if it loaded."""
    shutil.rmtree(folder / "ensemble" / "member_1")
    try:
        DIETEnsembleClassifier.load(config, storage, Resource("ensemble"), context)
    except ValueError as error:
        return str(error)
    return ""


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        main(Path(tmp))
    sys.exit(0)
