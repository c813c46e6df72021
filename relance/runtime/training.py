"""Train the Rasa model only when bot data changed.

The cache key is a hash of everything that shapes the model (config, domain, stories, rules, NLU
data, the custom NLU components' code and the Rasa version pin), so a change to wording templates
(served by the NLG endpoint) never triggers a retrain, and CI on a machine that already trained
the same data reuses it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from pathlib import Path

from relance.runtime.paths import BOT_DIR, NLU_DIR, PROJECT_ROOT, RASA_BIN, models_cache

TRAINING_INPUTS = (BOT_DIR / "domain", BOT_DIR / "data", NLU_DIR)
# The same inputs relative to a checkout (the benchmark may train another one, a worktree).
DOMAIN, STORIES_AND_RULES, NLU_DATA = (path.relative_to(PROJECT_ROOT) for path in TRAINING_INPUTS)
# Code Rasa runs while training (bot/components): it shapes the model as much as the data.
COMPONENTS = BOT_DIR / "components"


def model_fingerprint(config: Path) -> str:
    digest = hashlib.sha256()
    files = [config, PROJECT_ROOT / "requirements" / "rasa.txt"]
    for folder in TRAINING_INPUTS:
        files.extend(sorted(p for p in folder.rglob("*") if p.is_file()))
    files.extend(sorted(COMPONENTS.rglob("*.py")))
    for path in files:
        digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def rasa_train_command(rasa: Path, config: Path, root: Path, out: Path) -> list[str]:
    """`rasa train` on a checkout's domain, stories/rules and NLU data, into `out/model.tar.gz`.

    One definition for the model `relance run` ships and for the benchmark that measures it
    (bench/nlu/run.py --seeds, possibly on another checkout), so the two are trained alike.
    """
    return [
        str(rasa),
        "train",
        "--config",
        str(config),
        "--domain",
        str(root / DOMAIN),
        "--data",
        str(root / STORIES_AND_RULES),
        str(root / NLU_DATA),
        "--out",
        str(out),
        "--fixed-model-name",
        "model",
    ]


def ensure_model(config: Path, *, force: bool = False, echo: bool = True) -> Path:
    """Return a trained model for `config`, training it (once) if the data changed."""
    fingerprint = model_fingerprint(config)
    target = models_cache() / f"{config.stem}-{fingerprint}.tar.gz"
    if target.exists() and not force:
        if echo:
            print(f"model up to date: {target.name}")
        return target
    out_dir = models_cache() / f"training-{fingerprint}"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    started = time.monotonic()
    if echo:
        print(f"training the Rasa model with {config.name} (bot data changed)…")
    subprocess.run(
        rasa_train_command(RASA_BIN, config, PROJECT_ROOT, out_dir), cwd=PROJECT_ROOT, check=True
    )
    (out_dir / "model.tar.gz").replace(target)
    shutil.rmtree(out_dir, ignore_errors=True)
    if echo:
        print(f"trained in {time.monotonic() - started:.0f}s: {target.name}")
    return target
