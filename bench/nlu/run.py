"""NLU accuracy on the blind held-out set (bench/nlu_heldout), per language.

The held-out messages were written by someone who never saw data/nlu (see its README). For each
language: intent accuracy and macro-F1 from `rasa test nlu`, with the trained model for the
given config (cached by bot-data hash, like `relance bot train`, when run from the checkout the
app env is installed from; an NLU-only model trained under --work otherwise, e.g. in a git
worktree). Results are appended to BENCHMARKS.md with the command that produced them.

    .venv/bin/python bench/nlu/run.py --config bot/config.yml --append BENCHMARKS.md
    .venv/bin/python bench/nlu/run.py --config bot/config.ci.yml --details   # per intent

--details prints per-intent figures and (true intent -> predicted intent, count) pairs only:
the set is blind, its texts are never printed.

One trained model is one draw: with another DIET `random_seed` the same data scores about a
point higher or lower. `--seeds 42,7,13` trains the whole assistant from scratch once per seed
(`rasa train`, as `relance run` does, with DIET's seed replaced in a copy of the config) and
reports every run and the mean: that mean is the figure to quote. With the DIET ensemble the seed
is its first member's (members use seed, seed+1, …): keep seeds at least `ensemble_size` apart,
or two runs share members and are not independent draws.

    .venv/bin/python bench/nlu/run.py --config bot/config.yml --seeds 42,7,13 --append BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from datetime import date
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rasa_cli import PROJECT_ROOT, Evaluation, evaluate, publish, train_full, train_nlu

from relance.languages import LANGUAGES

HELDOUT = PROJECT_ROOT / "bench" / "nlu_heldout"
# The components whose `random_seed` --seeds replaces (the ensemble derives its members' seeds).
DIET_COMPONENTS = ("DIETClassifier", "DIETEnsembleClassifier")


def model_for(config: Path, work: Path | None) -> Path:
    """The model to evaluate: the shared cached one for the app's checkout, else (another
    checkout, or `--work` given) an NLU-only model trained under `work`."""
    from relance.runtime.paths import PROJECT_ROOT as APP_ROOT

    if work is None and APP_ROOT.resolve() == PROJECT_ROOT:
        from relance.runtime.training import ensure_model

        return ensure_model(config)
    out = work or Path(tempfile.mkdtemp(prefix="relance-nlu-model-"))
    print(f"training an NLU-only model with {config.name} in {out}…", flush=True)
    return train_nlu(PROJECT_ROOT, config, [PROJECT_ROOT / "data" / "nlu"], out)


def details(language: str, result: Evaluation) -> str:
    lines = [f"\n[{language}] per intent (precision / recall / f1 / support):"]
    for name, row in sorted(result.per_intent.items(), key=lambda kv: kv[1]["f1-score"]):
        lines.append(
            f"  {name:22} {row['precision']:.2f} {row['recall']:.2f} "
            f"{row['f1-score']:.2f} {int(row['support'])}"
        )
    lines.append(f"[{language}] confusions (true -> predicted: count):")
    for (true, predicted), count in result.confusions.most_common():
        lines.append(f"  {true} -> {predicted}: {count}")
    return "\n".join(lines)


def with_diet_seed(config: Path, seed: int, folder: Path) -> Path:
    """A copy of `config`, written in `folder`, whose DIET (or DIET ensemble) uses `seed` (Rasa
    resolves nothing relative to the config file: it runs from the checkout, as in production)."""
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    diet = [c for c in data["pipeline"] if c.get("name", "").split(".")[-1] in DIET_COMPONENTS]
    if not diet:
        raise SystemExit(f"{config} has no {' or '.join(DIET_COMPONENTS)}")
    diet[0]["random_seed"] = seed
    copy = folder / f"{config.stem}-seed{seed}.yml"
    copy.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return copy


def per_seed(config: Path, seeds: list[int], show_details: bool) -> list[dict[str, Evaluation]]:
    """Train the whole assistant once per DIET seed, from scratch, and evaluate each model."""
    results = []
    for run, seed in enumerate(seeds, start=1):
        work = Path(tempfile.mkdtemp(prefix="relance-nlu-full-"))
        try:
            print(
                f"run {run}/{len(seeds)}: rasa train with {config.name}, DIET seed {seed}…",
                flush=True,
            )
            model = train_full(PROJECT_ROOT, with_diet_seed(config, seed, work), work)
            rows = {
                lang: evaluate(PROJECT_ROOT, model, HELDOUT / f"{lang}.yml") for lang in LANGUAGES
            }
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print("  " + ", ".join(f"{k} {v.accuracy:.1%}" for k, v in rows.items()), flush=True)
        if show_details:
            for language, result in rows.items():
                print(details(language, result))
        results.append(rows)
    return results


def seeds_section(
    config_name: str, seeds: list[int], results: list[dict[str, Evaluation]]
) -> list[str]:
    listed = ",".join(str(s) for s in seeds)
    lines = [
        f"\n## NLU intent accuracy on the blind held-out set, DIET seeds {listed} "
        f"({date.today().isoformat()})\n",
        f"Command: `.venv/bin/python bench/nlu/run.py --config {config_name} "
        f"--seeds {listed} --append BENCHMARKS.md`\n",
        "Each run trains the whole assistant from scratch (`rasa train`, as `relance run` does) "
        "with one DIET seed (the first member's, for the DIET ensemble) and tests it on "
        "bench/nlu_heldout (written blind to the training "
        "data). Target: ≥ 95 % intent accuracy.\n",
        "| language | messages | "
        + " | ".join(f"seed {s}" for s in seeds)
        + " | mean | mean macro-F1 |",
        "| --- | ---: | " + " | ".join("---:" for _ in results) + " | ---: | ---: |",
    ]
    for language in LANGUAGES:
        runs = [r[language] for r in results]
        accuracy = statistics.mean(r.accuracy for r in runs)
        f1 = statistics.mean(r.macro_f1 for r in runs)
        cells = " | ".join(f"{r.accuracy:.1%}" for r in runs)
        lines.append(
            f"| {language} | {runs[0].support} | {cells} | **{accuracy:.1%}** | {f1:.3f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="bot/config.yml")
    parser.add_argument("--model", type=Path, help="evaluate this model instead of training one")
    parser.add_argument("--work", type=Path, help="where to train the NLU-only model (worktree)")
    parser.add_argument(
        "--seeds",
        help="comma-separated DIET (or first ensemble member) seeds: "
        "one whole-assistant training per seed, each run and the mean reported",
    )
    parser.add_argument("--details", action="store_true", help="per-intent figures, confusions")
    parser.add_argument("--append", help="append a results section to this Markdown file")
    args = parser.parse_args()
    config = PROJECT_ROOT / args.config
    if args.seeds:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        results = per_seed(config, seeds, args.details)
        publish(seeds_section(args.config, seeds, results), args.append)
        return
    model = args.model.resolve() if args.model else model_for(config, args.work)
    rows = {lang: evaluate(PROJECT_ROOT, model, HELDOUT / f"{lang}.yml") for lang in LANGUAGES}
    if args.details:
        for language, result in rows.items():
            print(details(language, result))
    command = f"--model {args.model}" if args.model else f"--config {args.config}"
    origin = "given model file" if args.model else f"training config `{args.config}`"
    lines = [
        f"\n## NLU intent accuracy on the blind held-out set ({date.today().isoformat()})\n",
        f"Command: `.venv/bin/python bench/nlu/run.py {command} --append BENCHMARKS.md`\n",
        f"Model: `{model.name}` ({origin}). Held-out set: bench/nlu_heldout "
        "(written blind to the training data). Target: ≥ 95 % intent accuracy.\n",
        "| language | messages | intent accuracy | macro-F1 |",
        "| --- | ---: | ---: | ---: |",
    ]
    for language, r in rows.items():
        lines.append(f"| {language} | {r.support} | {r.accuracy:.1%} | {r.macro_f1:.3f} |")
    publish(lines, args.append)


if __name__ == "__main__":
    main()
