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
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rasa_cli import PROJECT_ROOT, Evaluation, evaluate, publish, train_nlu

HELDOUT = PROJECT_ROOT / "bench" / "nlu_heldout"
LANGUAGES = ("fr", "en")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="bot/config.yml")
    parser.add_argument("--model", type=Path, help="evaluate this model instead of training one")
    parser.add_argument("--work", type=Path, help="where to train the NLU-only model (worktree)")
    parser.add_argument("--details", action="store_true", help="per-intent figures, confusions")
    parser.add_argument("--append", help="append a results section to this Markdown file")
    args = parser.parse_args()
    config = PROJECT_ROOT / args.config
    model = args.model.resolve() if args.model else model_for(config, args.work)
    rows = {lang: evaluate(PROJECT_ROOT, model, HELDOUT / f"{lang}.yml") for lang in LANGUAGES}
    if args.details:
        for language, result in rows.items():
            print(details(language, result))
    lines = [
        f"\n## NLU intent accuracy on the blind held-out set ({date.today().isoformat()})\n",
        f"Command: `.venv/bin/python bench/nlu/run.py --config {args.config} --append BENCHMARKS.md`\n",
        f"Model: `{model.name}` (training config `{args.config}`). Held-out set: bench/nlu_heldout "
        "(written blind to the training data). Target: ≥ 95 % intent accuracy.\n",
        "| language | messages | intent accuracy | macro-F1 |",
        "| --- | ---: | ---: | ---: |",
    ]
    for language, r in rows.items():
        lines.append(f"| {language} | {r.support} | {r.accuracy:.1%} | {r.macro_f1:.3f} |")
    publish(lines, args.append)


if __name__ == "__main__":
    main()
