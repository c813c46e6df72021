"""Train the production model while the stack already answers on a quick one, then swap it in.

The production model (an ensemble of DIETs) takes a quarter of an hour or more to train on a
small machine; a newcomer's first `make run` should not wait for it. The launcher serves the CI
model first, starts this training at a lower CPU priority once every service is up, and when it
is done loads the new model into the running Rasa through its own API (`PUT /model`). Rasa keeps
its tracker store and lock store across that call, so no conversation is dropped: a message that
arrives while the model loads waits for it (or is kept and replayed by the worker, like any
message that found the assistant busy).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import yaml

from relance.runtime.training import Training, TrainingFailed, start_training

# tqdm's bars in Rasa's output: "Epochs:  13%|█▎        | 8/60 [00:53<04:14, ...]"
_EPOCH_BAR = re.compile(r"Epochs:\s+\d+%\|[^|]*\|\s*(\d+)/(\d+)")
# Rasa loads a model synchronously inside its request handler: an ensemble takes a while.
LOAD_TIMEOUT_SECONDS = 600.0


def expected_bars(config: Path) -> int:
    """How many epoch bars a training with `config` prints: one per trained member of each
    component or policy with epochs (the DIET ensemble trains `ensemble_size` members)."""
    document = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    count = 0
    for step in [*(document.get("pipeline") or []), *(document.get("policies") or [])]:
        if isinstance(step, dict) and "epochs" in step:
            count += int(step.get("ensemble_size", 1))
    return max(count, 1)


def training_progress(log_text: str, bars: int) -> float:
    """An estimate from 0 to 1: the bars finished plus the share of the current one, out of
    `bars`. A new bar shows as its epoch counter starting again from a lower value."""
    done = 0
    fraction = 0.0
    previous = -1
    for match in _EPOCH_BAR.finditer(log_text):
        current, total = int(match.group(1)), int(match.group(2))
        if current < previous:
            done += 1
        previous = current
        fraction = current / total if total else 0.0
    if previous >= 0 and fraction >= 1.0:
        done, fraction = done + 1, 0.0
    return min((done + fraction) / bars, 1.0)


def load_model(rasa_url: str, auth_token: str, model: Path) -> None:
    """Ask a running Rasa to serve `model` (a path on this machine) from its next message."""
    response = httpx.put(
        f"{rasa_url.rstrip('/')}/model",
        params={"token": auth_token},
        json={"model_file": str(model)},
        timeout=LOAD_TIMEOUT_SECONDS,
    )
    if response.status_code != 204:
        raise RuntimeError(f"Rasa refused the model ({response.status_code}): {response.text}")


class BackgroundTraining:
    """One production training and the swap that follows it, on a thread of its own.

    `on_state(state, detail)` is called with "loading", "serving" or "failed" as they happen;
    `progress()` can be read at any time from the supervisor's loop.
    """

    def __init__(
        self,
        config: Path,
        log_path: Path,
        swap: Callable[[Path], None],
        on_state: Callable[[str, str], None],
    ) -> None:
        self.config = config
        self.log_path = log_path
        self._swap = swap
        self._on_state = on_state
        self._bars = expected_bars(config)
        self._training: Training | None = None
        self._thread: threading.Thread | None = None
        self.state = "training"

    def start(self) -> None:
        self._training = start_training(self.config, log_path=self.log_path, nice=10)
        self._thread = threading.Thread(target=self._finish, name="production-model", daemon=True)
        self._thread.start()

    def progress(self) -> float:
        if self.state != "training":
            return 1.0
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return 0.0
        return training_progress(text, self._bars)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def stop(self) -> None:
        if self._training is not None and self.state == "training":
            self._training.stop()

    def _finish(self) -> None:
        assert self._training is not None
        try:
            model = self._training.finish()
            self._set("loading", model.name)
            self._swap(model)
        except (TrainingFailed, RuntimeError, httpx.HTTPError) as exc:
            self._set("failed", str(exc))
            return
        self._set("serving", model.name)

    def _set(self, state: str, detail: str) -> None:
        self.state = state
        self._on_state(state, detail)
