"""How often the FallbackClassifier fires on the blind held-out set, per model and language.

`rasa test nlu` scores the intent underneath a fallback, so the accuracy figures cannot show
how often a debtor is asked to rephrase. This parses every held-out message with each model and
counts the messages answered `nlu_fallback`, split by whether the intent underneath was right
(a needless "please rephrase") or wrong (a wrong action avoided). Counts only: the held-out
texts are never printed.

Runs in the Rasa venv, from the checkout's root (the model may use bot.components):

    .venv-rasa/bin/python bench/nlu/fallback_rate.py MODEL.tar.gz [MODEL.tar.gz ...]
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HELDOUT = PROJECT_ROOT / "bench" / "nlu_heldout"
FALLBACK = "nlu_fallback"


async def rates(model: Path) -> list[str]:
    from rasa.core.agent import Agent
    from rasa.shared.nlu.training_data.loading import load_data

    agent = Agent.load(str(model))
    lines = []
    for language in ("fr", "en"):
        examples = load_data(str(HELDOUT / f"{language}.yml")).intent_examples
        fired = right_underneath = 0
        for example in examples:
            parsed = await agent.parse_message(example.get("text"))
            if parsed["intent"]["name"] != FALLBACK:
                continue
            fired += 1
            underneath = [r["name"] for r in parsed["intent_ranking"] if r["name"] != FALLBACK]
            right_underneath += bool(underneath) and underneath[0] == example.get("intent")
        lines.append(
            f"| {model.name} | {language} | {len(examples)} | {fired} ({fired / len(examples):.1%}) "
            f"| {right_underneath} | {fired - right_underneath} |"
        )
    return lines


def main(models: list[str]) -> None:
    """Everything Rasa prints while parsing goes to /dev/null: its debug log of each parse
    includes the message text, and the held-out texts must not be shown."""
    from rasa.utils.log_utils import configure_structlog

    sys.path.insert(0, str(PROJECT_ROOT))  # as `rasa` does with its working directory
    rows = [
        "| model | language | messages | fallbacks | right underneath (needless) "
        "| wrong underneath (avoided) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        configure_structlog(logging.WARNING)
        logging.disable(logging.WARNING)
        for model in models:
            rows.extend(asyncio.run(rates(Path(model))))
    print("\n".join(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
