"""Stratified k-fold cross-validation of the NLU training data (data/nlu), per language.

Every example of data/nlu/{fr,en} goes to one of k folds, stratified by (language, intent) with
a fixed seed; for each fold an NLU-only model is trained on the other folds (plus the regexes,
synonyms and lookups) with the given config and tested on the held-back examples of each
language. Reported per language: intent accuracy and macro-F1, mean ± standard deviation over
the folds. This measures how well the data generalises within itself; the blind held-out set
(bench/nlu/run.py) measures it against messages written independently.

    .venv/bin/python bench/nlu/cross_validation.py --config bot/config.yml --folds 5 \
        --append BENCHMARKS.md

--errors FILE writes the misclassified training examples (true -> predicted: text) to read.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rasa_cli import PROJECT_ROOT, Evaluation, evaluate, publish, train_nlu

from relance.languages import LANGUAGES

NLU_DIR = PROJECT_ROOT / "data" / "nlu"

Example = tuple[str, str]  # (intent, annotated example text)


def load_examples(language: str) -> list[Example]:
    examples: list[Example] = []
    for path in sorted((NLU_DIR / language).glob("*.yml")):
        for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
            if "intent" not in block:
                continue
            for line in block["examples"].splitlines():
                if line.strip().startswith("- "):
                    examples.append((block["intent"], line.strip()[2:]))
    return examples


def stratified_folds(examples: list[Example], k: int, seed: int) -> list[list[Example]]:
    """Shuffle each intent's examples, then deal them round-robin, continuing across intents."""
    by_intent: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        by_intent[example[0]].append(example)
    rng = random.Random(seed)
    folds: list[list[Example]] = [[] for _ in range(k)]
    position = 0
    for intent in sorted(by_intent):
        group = by_intent[intent]
        rng.shuffle(group)
        for example in group:
            folds[position % k].append(example)
            position += 1
    return folds


def write_nlu(path: Path, examples: list[Example]) -> None:
    by_intent: dict[str, list[str]] = defaultdict(list)
    for intent, text in examples:
        by_intent[intent].append(text)
    lines = ['version: "3.1"', "nlu:"]
    for intent, texts in by_intent.items():
        lines += [f"- intent: {intent}", "  examples: |", *(f"    - {t}" for t in texts)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_fold(
    index: int, folds: dict[str, list[list[Example]]], config: Path, work: Path, errors: Path | None
) -> dict[str, Evaluation]:
    fold_dir = work / f"fold-{index}"
    train_dir = fold_dir / "train"
    train_dir.mkdir(parents=True)
    for extra in NLU_DIR.iterdir():  # regexes, synonyms, lookups: shared resources, not examples
        if extra.name in LANGUAGES:
            continue
        if extra.is_dir():
            shutil.copytree(extra, train_dir / extra.name)
        else:
            shutil.copy(extra, train_dir / extra.name)
    for language, language_folds in folds.items():
        train = [e for i, fold in enumerate(language_folds) if i != index for e in fold]
        write_nlu(train_dir / f"{language}.yml", train)
        write_nlu(fold_dir / f"test-{language}.yml", language_folds[index])
    model = train_nlu(PROJECT_ROOT, config, [train_dir], fold_dir / "model")
    return {
        language: evaluate(PROJECT_ROOT, model, fold_dir / f"test-{language}.yml", errors)
        for language in folds
    }


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1%} ± {spread:.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="bot/config.yml")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work", type=Path, help="keep fold data and models here")
    parser.add_argument("--errors", type=Path, help="write misclassified training examples here")
    parser.add_argument("--append", help="append a results section to this Markdown file")
    args = parser.parse_args()
    config = PROJECT_ROOT / args.config
    work = args.work or Path(tempfile.mkdtemp(prefix="relance-nlu-cv-"))
    if work.exists():
        shutil.rmtree(work)
    if args.errors and args.errors.exists():
        args.errors.unlink()
    examples = {language: load_examples(language) for language in LANGUAGES}
    folds = {lang: stratified_folds(ex, args.folds, args.seed) for lang, ex in examples.items()}
    started = time.monotonic()
    results: list[dict[str, Evaluation]] = []
    for index in range(args.folds):
        results.append(run_fold(index, folds, config, work, args.errors))
        summary = ", ".join(
            f"{lang} {r.accuracy:.1%} / {r.macro_f1:.3f}" for lang, r in results[-1].items()
        )
        print(f"fold {index + 1}/{args.folds}: {summary}", flush=True)
    minutes = (time.monotonic() - started) / 60
    confusions: dict[str, Counter[tuple[str, str]]] = {lang: Counter() for lang in LANGUAGES}
    for fold_result in results:
        for language, r in fold_result.items():
            confusions[language].update(r.confusions)
    for language in LANGUAGES:
        pairs = ", ".join(f"{t}→{p} {n}" for (t, p), n in confusions[language].most_common(8))
        print(f"[{language}] most frequent confusions: {pairs}")
    command = (
        f".venv/bin/python bench/nlu/cross_validation.py --config {args.config} "
        f"--folds {args.folds} --seed {args.seed} --append BENCHMARKS.md"
    )
    lines = [
        f"\n## NLU {args.folds}-fold cross-validation on data/nlu ({date.today().isoformat()})\n",
        f"Command: `{command}`\n",
        f"Training config `{args.config}`; folds stratified by language and intent (seed "
        f"{args.seed}); one bilingual NLU-only model per fold, tested per language on its held-back "
        f"examples; mean ± standard deviation over the folds. {args.folds} trainings took "
        f"{minutes:.0f} min on the shared 2-CPU machine.\n",
        "| language | examples | intent accuracy | macro-F1 |",
        "| --- | ---: | ---: | ---: |",
    ]
    for language in LANGUAGES:
        accuracies = [r[language].accuracy for r in results]
        f1s = [r[language].macro_f1 for r in results]
        f1_spread = statistics.stdev(f1s) if len(f1s) > 1 else 0.0
        lines.append(
            f"| {language} | {len(examples[language])} | {mean_std(accuracies)} | "
            f"{statistics.mean(f1s):.3f} ± {f1_spread:.3f} |"
        )
    publish(lines, args.append)


if __name__ == "__main__":
    main()
