"""Run a script inside the Rasa venv (Python 3.10, Rasa 3.6) from the app's test suite.

The code under bot/ runs in Rasa's process, not the app's: its tests run a small script there
and read the JSON the script prints on its last line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from relance.runtime.paths import PROJECT_ROOT, RASA_BIN


def run_in_rasa_venv(script: Path) -> Any:
    python = RASA_BIN.with_name("python")
    if not python.exists():
        pytest.fail(f"the Rasa venv is missing ({python}): run scripts/ensure-envs.sh")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [str(python), str(script)], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        pytest.fail(f"{script.name} exited with {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])
