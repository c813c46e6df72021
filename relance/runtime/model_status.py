"""Which assistant model is serving, and how far the production model's training has got.

`relance run` on a machine that has never trained the production model serves a quick model at
once and trains the production one in the background (relance/runtime/background_training.py).
The launcher knows the state; the api (`/healthz`) and the debtor simulator show it. They are
different processes, so the state is a small JSON file under var/, replaced atomically so a
reader never sees half a document.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

ProductionState = Literal["serving", "training", "loading", "failed"]

STATUS_FILE = "model-status.json"


@dataclass(frozen=True)
class ModelStatus:
    """`serving` is the training config whose model Rasa answers with (config.yml or
    config.ci.yml); `production` says where the production model stands: already `serving`,
    `training` (with `progress` from 0 to 1, an estimate from the epochs done), `loading` into
    the running Rasa, or `failed` (the quick model keeps serving; `detail` says why)."""

    serving: str
    production: ProductionState
    progress: float | None = None
    detail: str = ""

    @property
    def quick(self) -> bool:
        return self.production != "serving"


def status_path(var_dir: Path) -> Path:
    return var_dir / STATUS_FILE


def write_status(var_dir: Path, status: ModelStatus) -> None:
    var_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=var_dir, prefix=".model-status-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(asdict(status), handle)
    os.replace(tmp, status_path(var_dir))


def read_status(var_dir: Path) -> ModelStatus | None:
    """The launcher's last word, or None when no `relance run` wrote one (tests, production,
    where Rasa is deployed on its own and serves whatever model it was given)."""
    try:
        data = json.loads(status_path(var_dir).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return ModelStatus(
        serving=str(data["serving"]),
        production=data["production"],
        progress=data.get("progress"),
        detail=str(data.get("detail", "")),
    )


def clear_status(var_dir: Path) -> None:
    status_path(var_dir).unlink(missing_ok=True)
