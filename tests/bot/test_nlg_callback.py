"""bot/nlg.py, run for real in the Rasa venv: the NLG request Rasa posts to the api keeps the
same format as Rasa's stock callback but carries no events, so its size does not grow with the
conversation (the stock one passed the api's body limit after ~100 turns)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from relance.runtime.paths import PROJECT_ROOT, RASA_BIN

SCRIPT = Path(__file__).with_name("nlg_roundtrip.py")


@cache
def roundtrip() -> dict[str, Any]:
    python = RASA_BIN.with_name("python")
    if not python.exists():
        pytest.fail(f"the Rasa venv is missing ({python}): run scripts/ensure-envs.sh")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [str(python), str(SCRIPT)], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        pytest.fail(f"nlg_roundtrip.py exited with {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_body_does_not_grow_with_the_conversation() -> None:
    sizes = roundtrip()["sizes"]
    assert sizes["300"]["stock"] > 256 * 1024  # what made the api answer 413
    assert sizes["300"]["bounded"] < 4 * 1024
    assert abs(sizes["300"]["bounded"] - sizes["1"]["bounded"]) < 64  # only the digits differ


def test_the_body_carries_what_the_api_renders_from() -> None:
    body = roundtrip()["body"]
    assert body["response"] == "utter_greet"
    assert body["arguments"] == {"creditor_name": "Demo"}
    assert "events" not in body["tracker"]
    assert body["tracker"]["slots"]["language"] == "fr"
    assert body["tracker"]["latest_message"]["metadata"]["language"] == "en"
    assert body["channel"] == {"name": "rest"}
