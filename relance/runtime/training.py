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
import tempfile
import time
from dataclasses import dataclass
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


class TrainingFailed(RuntimeError):
    """`rasa train` exited with an error: the cache keeps no model for that data."""


@dataclass
class Training:
    """One `rasa train` run into a private folder of the cache; `finish()` puts the model in place.

    The folder is unique per run, so two runs of the same data (two checkouts, a stack and a
    benchmark) never delete each other's output; the last to finish replaces the cached model
    with an identical one.
    """

    config: Path
    target: Path
    out_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path | None = None

    def poll(self) -> int | None:
        return self.process.poll()

    def wait(self) -> int:
        return self.process.wait()

    def stop(self) -> None:
        """End the run (Ctrl-C on the stack): no half-trained model reaches the cache."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.out_dir, ignore_errors=True)

    def finish(self) -> Path:
        code = self.process.wait()
        try:
            if code != 0:
                where = f"; see {self.log_path}" if self.log_path else ""
                raise TrainingFailed(
                    f"rasa train with {self.config.name} exited with {code}{where}"
                )
            (self.out_dir / "model.tar.gz").replace(self.target)
        finally:
            shutil.rmtree(self.out_dir, ignore_errors=True)
        return self.target


def model_target(config: Path) -> Path:
    """Where the model for `config` and the current bot data lives in the cache."""
    return models_cache() / f"{config.stem}-{model_fingerprint(config)}.tar.gz"


def cached_model(config: Path) -> Path | None:
    target = model_target(config)
    return target if target.exists() else None


def start_training(config: Path, *, log_path: Path | None = None, nice: int = 0) -> Training:
    """Start `rasa train` for `config` without waiting. With `log_path`, its output goes there
    (the background training of `relance run` reads its progress from it); else to ours.
    `nice` lowers its priority, so a stack serving debtors meanwhile stays responsive."""
    target = model_target(config)
    out_dir = Path(tempfile.mkdtemp(prefix=f"training-{target.stem}-", dir=models_cache()))
    output = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        output = log_path.open("wb")
    try:
        command = rasa_train_command(RASA_BIN, config, PROJECT_ROOT, out_dir)
        process = subprocess.Popen(
            ["nice", "-n", str(nice), *command] if nice else command,
            cwd=PROJECT_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=log_path is not None,
        )
    finally:
        if output is not None:
            output.close()  # the child holds its own copy
    return Training(
        config=config, target=target, out_dir=out_dir, process=process, log_path=log_path
    )


def ensure_model(config: Path, *, force: bool = False, echo: bool = True) -> Path:
    """Return a trained model for `config`, training it (once) if the data changed."""
    target = model_target(config)
    if target.exists() and not force:
        if echo:
            print(f"model up to date: {target.name}")
        return target
    started = time.monotonic()
    if echo:
        print(f"training the Rasa model with {config.name} (bot data changed)…")
    try:
        start_training(config).finish()
    except TrainingFailed as exc:
        raise subprocess.CalledProcessError(1, f"rasa train ({exc})") from exc
    if echo:
        print(f"trained in {time.monotonic() - started:.0f}s: {target.name}")
    return target
