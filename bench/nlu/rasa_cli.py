"""Thin wrappers over the Rasa CLI shared by the NLU benchmarks (held-out set, cross-validation).

The project root is derived from this file, not from the installed `relance` package: the app
env has `relance` installed in editable mode from one checkout, and the benchmarks must measure
the checkout they are run from (a git worktree with other NLU data, for instance).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def rasa_bin(root: Path = PROJECT_ROOT) -> Path:
    """The Rasa executable: $RELANCE_RASA_BIN, else the checkout's .venv-rasa, else the app's."""
    if os.environ.get("RELANCE_RASA_BIN"):
        return Path(os.environ["RELANCE_RASA_BIN"])
    local = root / ".venv-rasa" / "bin" / "rasa"
    if local.exists():
        return local
    from relance.runtime.paths import RASA_BIN  # the checkout the app env was installed from

    return RASA_BIN


def train_nlu(root: Path, config: Path, nlu: list[Path], out: Path) -> Path:
    """Train an NLU-only model (no stories: the benchmarks measure intents) and return it."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            str(rasa_bin(root)),
            "train",
            "nlu",
            "--config",
            str(config),
            "--nlu",
            *(str(p) for p in nlu),
            "--out",
            str(out),
            "--fixed-model-name",
            "nlu",
        ],
        cwd=root,
        check=True,
        capture_output=True,
    )
    return out / "nlu.tar.gz"


def train_full(root: Path, config: Path, out: Path) -> Path:
    """Train the whole assistant with the very command `relance run` uses (`rasa train`: domain,
    stories, rules and NLU data), without the model cache, and return it: the production figure."""
    from relance.runtime.training import rasa_train_command

    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        rasa_train_command(rasa_bin(root), config, root, out),
        cwd=root,
        check=True,
        capture_output=True,
    )
    return out / "model.tar.gz"


@dataclass
class Evaluation:
    """Aggregate figures only: the held-out texts must never be printed or stored."""

    accuracy: float
    macro_f1: float
    support: int
    per_intent: dict[str, dict[str, float]]
    confusions: Counter[tuple[str, str]]  # (true intent, predicted intent) -> count


def evaluate(root: Path, model: Path, nlu_file: Path, errors_out: Path | None = None) -> Evaluation:
    """`rasa test nlu` on one file; keeps the intent report and the confusion pairs, no text.

    errors_out (training-data cross-validation only, never the blind set) also keeps the
    misclassified messages, to read them.
    """
    with tempfile.TemporaryDirectory(prefix="relance-nlu-test-") as out:
        subprocess.run(
            [
                str(rasa_bin(root)),
                "test",
                "nlu",
                "--model",
                str(model),
                "--nlu",
                str(nlu_file),
                "--out",
                out,
                "--no-plot",
            ],
            cwd=root,
            check=True,
            capture_output=True,
        )
        report = json.loads((Path(out) / "intent_report.json").read_text())
        errors_file = Path(out) / "intent_errors.json"
        errors = json.loads(errors_file.read_text()) if errors_file.exists() else []
    if errors_out is not None:
        with errors_out.open("a", encoding="utf-8") as fh:
            for e in errors:
                predicted = (e.get("intent_prediction") or {}).get("name")
                fh.write(f"{e['intent']} -> {predicted}: {e['text']}\n")
    confusions: Counter[tuple[str, str]] = Counter(
        (e["intent"], (e.get("intent_prediction") or {}).get("name") or "None") for e in errors
    )
    per_intent = {
        name: row
        for name, row in report.items()
        if isinstance(row, dict) and name not in ("macro avg", "weighted avg", "micro avg")
    }
    return Evaluation(
        accuracy=report["accuracy"],
        macro_f1=report["macro avg"]["f1-score"],
        support=int(report["macro avg"]["support"]),
        per_intent=per_intent,
        confusions=confusions,
    )


def publish(lines: list[str], append: Path | str | None) -> None:
    """Print a results section and, with `append`, add it to that Markdown file."""
    text = "\n".join(lines) + "\n"
    print(text)
    if append:
        with (PROJECT_ROOT / append).open("a", encoding="utf-8") as fh:
            fh.write(text)
