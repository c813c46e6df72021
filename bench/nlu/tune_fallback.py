"""Tune the FallbackClassifier's threshold and ambiguity_threshold on data (issue 24).

The held-out set (bench/nlu_heldout) is blind and must not tune anything, and the training
examples cannot show what a threshold costs (DIET is sure of what it was trained on). So one
NLU-only model is trained on the training data minus a stratified tuning split (one fold of
--folds, every intent, fixed seed; shared regexes, synonyms and lookups kept), and two sets are
parsed once each:

- off-topic: CLINC150's `oos_train` (English) plus the tuning split's out_of_scope examples
  (French and English), which the model has not seen;
- in-scope: the tuning split's other examples, real debtor phrasings the model has not seen.

DIET's rankings are then replayed offline (bench/nlu/offtopic.py's `outcome`: the
FallbackClassifier, then the ConsequenceGuard of --config) for every (threshold, ambiguity) of
the grid. Chosen: the setting that takes the fewest off-topic messages for a business intent
while asking at most --max-rephrase of the in-scope messages of each language to rephrase; ties
go to the lower thresholds (fewer rephrases). The model is cached in --work, so a second run
(another bound, another guard) parses without training.

Runs in the Rasa venv, from the checkout's root:

    .venv-rasa/bin/python bench/nlu/tune_fallback.py --work /tmp/relance-tune --append BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # relance, bot.components

from cross_validation import NLU_DIR, Example, load_examples, stratified_folds, write_nlu
from offtopic import (
    DEFAULT_OOS,
    FALLBACK,
    NOT_BUSINESS,
    PROJECT_ROOT,
    Parsed,
    Thresholds,
    load_oos,
    outcome,
    parse_all,
)
from rasa_cli import publish, train_nlu

from relance.languages import LANGUAGES

THRESHOLDS = [round(0.30 + 0.05 * i, 2) for i in range(13)]  # 0.30 … 0.90
AMBIGUITIES = [round(0.05 * i, 2) for i in range(7)]  # 0.00 … 0.30
OUT_OF_SCOPE = "out_of_scope"


def split(folds: int, seed: int) -> tuple[dict[str, list[Example]], dict[str, list[Example]]]:
    """Per language: (training examples, tuning examples), fold 0 of a stratified split."""
    train: dict[str, list[Example]] = {}
    tuning: dict[str, list[Example]] = {}
    for language in LANGUAGES:
        dealt = stratified_folds(load_examples(language), folds, seed)
        tuning[language] = dealt[0]
        train[language] = [e for fold in dealt[1:] for e in fold]
    return train, tuning


def plain(annotated: str) -> str:
    """`[200](amount)` -> `200`: the text a debtor types, without entity annotations."""
    import re

    text = re.sub(r"\[([^\]]+)\]\((?:[^)]+)\)", r"\1", annotated)
    return re.sub(r"\[([^\]]+)\]\{[^}]+\}", r"\1", text)


def train(work: Path, config: Path, examples: dict[str, list[Example]]) -> Path:
    model = work / "model" / "nlu.tar.gz"
    if model.exists():
        return model
    data = work / "train"
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    for extra in NLU_DIR.iterdir():  # regexes, synonyms, lookups: resources, not examples
        if extra.name in LANGUAGES:
            continue
        if extra.is_dir():
            shutil.copytree(extra, data / extra.name)
        else:
            shutil.copy(extra, data / extra.name)
    for language, language_examples in examples.items():
        write_nlu(data / f"{language}.yml", language_examples)
    return train_nlu(PROJECT_ROOT, config, [data], work / "model")


def off_topic_share(messages: Sequence[Parsed], t: Thresholds) -> int:
    return sum(outcome(m, t) not in NOT_BUSINESS for m in messages)


def rephrases(messages: Sequence[Parsed], t: Thresholds) -> int:
    return sum(outcome(m, t) == FALLBACK for m in messages)


def sweep(
    off_topic: Sequence[Parsed],
    in_scope: dict[str, list[Parsed]],
    base: Thresholds,
    max_rephrase: float,
) -> tuple[Thresholds, list[str]]:
    """The grid as a Markdown table (off-topic accepted / worst in-scope rephrase rate), and
    the chosen setting: fewest off-topic accepted within the rephrase bound, lowest thresholds
    on ties (the grid is walked upwards and only a strict improvement replaces the choice)."""
    rows = [
        "| threshold | " + " | ".join(f"ambiguity {a:.2f}" for a in AMBIGUITIES) + " |",
        "| ---: |" + " ---: |" * len(AMBIGUITIES),
    ]
    best: tuple[int, Thresholds] | None = None
    for threshold in THRESHOLDS:
        cells = []
        for ambiguity in AMBIGUITIES:
            t = replace(base, fallback=threshold, ambiguity=ambiguity)
            accepted = off_topic_share(off_topic, t)
            worst = max(rephrases(m, t) / len(m) for m in in_scope.values())
            allowed = worst <= max_rephrase
            cells.append(f"{accepted} / {worst:.1%}" + ("" if allowed else " ✗"))
            if allowed and (best is None or accepted < best[0]):
                best = (accepted, t)
        rows.append(f"| {threshold:.2f} | " + " | ".join(cells) + " |")
    if best is None:
        raise SystemExit(f"no setting keeps the rephrase rate within {max_rephrase:.1%}")
    return best[1], rows


def describe(
    label: str, off_topic: Sequence[Parsed], in_scope: dict[str, list[Parsed]], t: Thresholds
) -> str:
    n = len(off_topic)
    accepted = off_topic_share(off_topic, t)
    cells = [
        f"{rephrases(m, t)}/{len(m)} ({rephrases(m, t) / len(m):.1%})" for m in in_scope.values()
    ]
    return (
        f"| {label} | {t.fallback:.2f} / {t.ambiguity:.2f} | {accepted}/{n} ({accepted / n:.1%}) | "
        + " | ".join(cells)
        + " |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="bot/config.ci.yml")
    parser.add_argument("--folds", type=int, default=6, help="the tuning split is 1/folds")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-rephrase", type=float, default=0.03)
    parser.add_argument("--oos", type=Path, default=DEFAULT_OOS)
    parser.add_argument("--work", type=Path, required=True, help="tuning data and model")
    parser.add_argument("--append", help="append the results section to this Markdown file")
    args = parser.parse_args()
    config = PROJECT_ROOT / args.config
    training, tuning = split(args.folds, args.seed)
    model = train(args.work, config, training)
    oos = load_oos(args.oos if args.oos.is_absolute() else PROJECT_ROOT / args.oos)
    sets: dict[str, list[tuple[str, str | None]]] = {
        "oos_train": [(m, None) for m in oos["oos_train"]]
    }
    for language, examples in tuning.items():
        sets[f"oos_{language}"] = [(plain(t), None) for i, t in examples if i == OUT_OF_SCOPE]
        sets[f"in_{language}"] = [(plain(t), i) for i, t in examples if i != OUT_OF_SCOPE]
    from rasa.utils.log_utils import configure_structlog

    with (
        open(os.devnull, "w") as sink,
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
    ):
        configure_structlog(logging.WARNING)
        logging.disable(logging.WARNING)
        parsed = asyncio.run(parse_all(model, sets))
    off_topic = [m for name, ms in parsed.items() if name.startswith("oos_") for m in ms]
    in_scope = {language: parsed[f"in_{language}"] for language in LANGUAGES}
    current = Thresholds.from_config(config)
    chosen, grid = sweep(off_topic, in_scope, current, args.max_rephrase)
    sizes = ", ".join(f"{lang} {len(m)}" for lang, m in in_scope.items())
    lines = [
        f"\n### FallbackClassifier tuned on data ({date.today().isoformat()})\n",
        f"Command: `.venv-rasa/bin/python bench/nlu/tune_fallback.py --config {args.config} "
        f"--folds {args.folds} --seed {args.seed} --max-rephrase {args.max_rephrase}`. One "
        f"NLU-only model trained without a stratified tuning split (1/{args.folds} of every "
        f"intent's examples); off-topic: CLINC150 oos_train ({len(parsed['oos_train'])}) plus "
        f"the split's out_of_scope examples (fr {len(parsed['oos_fr'])}, en "
        f"{len(parsed['oos_en'])}), {len(off_topic)} in all; in-scope: the split's other "
        f"examples ({sizes}). ConsequenceGuard of {args.config} applied. Cell: off-topic "
        "messages taken for a business intent / worst language's in-scope rephrase rate "
        f"(✗: above the {args.max_rephrase:.0%} bound).\n",
        *grid,
        "",
        "| setting | threshold / ambiguity | off-topic taken for business | "
        + " | ".join(f"in-scope rephrase {lang}" for lang in in_scope)
        + " |",
        "| --- | --- | ---: |" + " ---: |" * len(in_scope),
        describe(f"{args.config} before", off_topic, in_scope, current),
        describe("chosen", off_topic, in_scope, chosen),
    ]
    publish(lines, args.append)
    print(f"chosen: threshold {chosen.fallback}, ambiguity_threshold {chosen.ambiguity}")


if __name__ == "__main__":
    main()
