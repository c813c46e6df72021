"""NLU accuracy on the blind held-out set (bench/nlu_heldout), per language.

The held-out messages were written by someone who never saw data/nlu (see its README). For each
language: intent accuracy and macro-F1 from `rasa test nlu`, with the trained model for the
given config (cached by bot-data hash, like `relance bot train`). Results are appended to
BENCHMARKS.md with the command that produced them.

    .venv/bin/python bench/nlu/run.py --config bot/config.yml --append BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from datetime import date
from pathlib import Path

from relance.runtime.paths import PROJECT_ROOT, RASA_BIN
from relance.runtime.training import ensure_model

HELDOUT = PROJECT_ROOT / "bench" / "nlu_heldout"


def evaluate(model: Path, language: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [
                str(RASA_BIN),
                "test",
                "nlu",
                "--model",
                str(model),
                "--nlu",
                str(HELDOUT / f"{language}.yml"),
                "--out",
                out,
                "--no-plot",
            ],
            cwd=PROJECT_ROOT,
            check=True,
            capture_output=True,
        )
        report = json.loads((Path(out) / "intent_report.json").read_text())
    intents = len(report) - 3  # per-intent rows, then accuracy, macro avg, weighted avg
    return {
        "accuracy": report["accuracy"],
        "macro_f1": report["macro avg"]["f1-score"],
        "support": report["macro avg"]["support"],
        "intents": intents,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="bot/config.yml")
    parser.add_argument("--append", help="append a results section to this Markdown file")
    args = parser.parse_args()
    config = PROJECT_ROOT / args.config
    model = ensure_model(config)
    rows = {language: evaluate(model, language) for language in ("fr", "en")}
    lines = [
        f"\n## NLU intent accuracy on the blind held-out set ({date.today().isoformat()})\n",
        f"Command: `.venv/bin/python bench/nlu/run.py --config {args.config} --append BENCHMARKS.md`\n",
        f"Model: `{model.name}` (training config `{args.config}`). Held-out set: bench/nlu_heldout "
        "(written blind to the training data). Target: ≥ 95 % intent accuracy.\n",
        "| language | messages | intent accuracy | macro-F1 |",
        "| --- | ---: | ---: | ---: |",
    ]
    for language, r in rows.items():
        lines.append(
            f"| {language} | {int(r['support'])} | {r['accuracy']:.1%} | {r['macro_f1']:.3f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append:
        with (PROJECT_ROOT / args.append).open("a", encoding="utf-8") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
