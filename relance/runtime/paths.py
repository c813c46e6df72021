"""Where things live on disk. Everything generated goes under var/ (ignored by git) or the cache."""

from __future__ import annotations

import os
from pathlib import Path

# Re-exported: every path here starts from it.
from relance.settings import PROJECT_ROOT as PROJECT_ROOT

BOT_DIR = PROJECT_ROOT / "bot"
NLU_DIR = PROJECT_ROOT / "data" / "nlu"
RASA_BIN = PROJECT_ROOT / ".venv-rasa" / "bin" / "rasa"
ACTIONS_PACKAGE = "actions"


def cache_dir() -> Path:
    return Path(os.environ.get("RELANCE_CACHE_DIR", Path.home() / ".cache" / "relance"))


def models_cache() -> Path:
    path = cache_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path
