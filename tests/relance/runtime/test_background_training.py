"""The production model trains behind the quick one and is swapped in (or reported failed), with
a progress estimate read from Rasa's epoch bars."""

from __future__ import annotations

import os
import stat
import sys
import threading
from pathlib import Path

import pytest

from relance.runtime import background_training, training
from relance.runtime.background_training import (
    BackgroundTraining,
    expected_bars,
    training_progress,
)
from relance.runtime.launcher import QUICK_CONFIG, choose_serving_config
from relance.runtime.paths import BOT_DIR

FAKE_RASA = """#!{python}
import os, sys, time
out = sys.argv[sys.argv.index("--out") + 1]
print(f"niceness {{os.nice(0)}}", flush=True)
for member in range(2):
    for epoch in range(0, 11):
        print(f"Epochs: {{epoch * 10:3d}}%|##| {{epoch}}/10 [00:01<00:02]", flush=True)
    time.sleep(0.05)
if os.environ.get("FAKE_RASA_FAIL"):
    print("boom", flush=True)
    sys.exit(3)
with open(os.path.join(out, "model.tar.gz"), "wb") as handle:
    handle.write(b"model")
"""


@pytest.fixture
def fake_rasa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "rasa"
    script.write_text(FAKE_RASA.format(python=sys.executable), encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(training, "RASA_BIN", script)
    monkeypatch.setenv("RELANCE_CACHE_DIR", str(tmp_path / "cache"))
    return script


def test_bars_expected_from_the_configs() -> None:
    assert expected_bars(BOT_DIR / "config.yml") == 4  # three DIETs and TED
    assert expected_bars(BOT_DIR / "config.ci.yml") == 2


@pytest.mark.parametrize(
    ("log", "bars", "expected"),
    [
        ("", 4, 0.0),
        ("Epochs:  50%|#####     | 30/60 [00:10<00:10]", 4, 0.125),
        # first member done, second at 15/60: the counter went back down
        ("Epochs: 100%|##| 60/60 [..]\nEpochs:  25%|#| 15/60 [..]", 4, 0.3125),
        ("Epochs: 100%|##| 60/60 [..]\n" * 1 + "Epochs: 100%|##| 30/30 [..]", 2, 1.0),
    ],
)
def test_progress_from_the_epoch_bars(log: str, bars: int, expected: float) -> None:
    assert training_progress(log, bars) == pytest.approx(expected)


def _run(
    config: Path, tmp_path: Path
) -> tuple[BackgroundTraining, list[tuple[str, str]], list[Path]]:
    states: list[tuple[str, str]] = []
    swapped: list[Path] = []
    done = threading.Event()

    def on_state(state: str, detail: str) -> None:
        states.append((state, detail))
        if state in ("serving", "failed"):
            done.set()

    background = BackgroundTraining(
        config, tmp_path / "logs" / "training.log", swap=swapped.append, on_state=on_state
    )
    background.start()
    assert done.wait(60), states
    background.join(5)
    return background, states, swapped


def test_a_finished_training_is_cached_then_swapped_in(fake_rasa: Path, tmp_path: Path) -> None:
    config = BOT_DIR / "config.ci.yml"
    background, states, swapped = _run(config, tmp_path)
    target = training.model_target(config)
    assert [s for s, _ in states] == ["loading", "serving"]
    assert swapped == [target]
    assert target.read_bytes() == b"model"
    assert background.progress() == 1.0
    assert training.cached_model(config) == target
    leftovers = [p for p in target.parent.iterdir() if p.name.startswith("training-")]
    assert leftovers == [], "the private training folder is removed"


def test_a_failed_training_is_reported_and_nothing_is_cached(
    fake_rasa: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_RASA_FAIL", "1")
    config = BOT_DIR / "config.ci.yml"
    _, states, swapped = _run(config, tmp_path)
    assert [s for s, _ in states] == ["failed"]
    assert "exited with 3" in states[0][1] and "training.log" in states[0][1]
    assert swapped == []
    assert training.cached_model(config) is None


def test_a_refused_swap_is_reported_failed(fake_rasa: Path, tmp_path: Path) -> None:
    states: list[str] = []
    done = threading.Event()

    def refuse(model: Path) -> None:
        raise RuntimeError("Rasa refused the model (400)")

    def on_state(state: str, detail: str) -> None:
        states.append(state)
        if state in ("serving", "failed"):
            done.set()

    background = BackgroundTraining(
        BOT_DIR / "config.ci.yml", tmp_path / "t.log", swap=refuse, on_state=on_state
    )
    background.start()
    assert done.wait(60)
    assert states == ["loading", "failed"]


def test_the_quick_model_serves_only_while_the_production_one_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELANCE_CACHE_DIR", str(tmp_path))
    production = BOT_DIR / "config.yml"
    assert choose_serving_config(production, quick_first=True) == QUICK_CONFIG
    assert choose_serving_config(production, quick_first=False) == production
    assert choose_serving_config(QUICK_CONFIG, quick_first=True) == QUICK_CONFIG
    training.model_target(production).write_bytes(b"trained before")
    assert choose_serving_config(production, quick_first=True) == production


def test_load_model_puts_the_path_with_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, dict[str, str], dict[str, str]]] = []

    class Answer:
        status_code = 204
        text = ""

    def put(url: str, *, params: dict[str, str], json: dict[str, str], timeout: float) -> Answer:
        calls.append((url, params, json))
        return Answer()

    monkeypatch.setattr(background_training.httpx, "put", put)
    background_training.load_model("http://127.0.0.1:5005/", "tok", Path("/m/model.tar.gz"))
    assert calls == [
        ("http://127.0.0.1:5005/model", {"token": "tok"}, {"model_file": "/m/model.tar.gz"})
    ]


def test_training_runs_at_a_lower_priority(fake_rasa: Path, tmp_path: Path) -> None:
    log = tmp_path / "t.log"
    training.start_training(BOT_DIR / "config.ci.yml", log_path=log, nice=10).finish()
    reported = int(log.read_text().split("niceness ")[1].split()[0])
    assert reported == min(os.nice(0) + 10, 19)


def test_each_service_is_waited_for_as_long_as_it_needs(tmp_path: Path) -> None:
    """Rasa gets minutes to load on a busy machine (the first run gave up after 180 s while
    TensorFlow was still loading); a service's own start_timeout is what supervise waits."""
    from relance.runtime import stack

    rasa = stack.rasa_service(stack.Ports(), tmp_path / "m.tar.gz", tmp_path / "e.yml", "t")
    assert rasa.start_timeout >= 600
    never_healthy = stack.Service(
        name="sleeper",
        argv=[sys.executable, "-c", "import time; time.sleep(30)"],
        health_url="http://127.0.0.1:9/",
        start_timeout=1.0,
    )
    running = stack.Stack(env=dict(os.environ), log_dir=tmp_path)
    with pytest.raises(TimeoutError, match="sleeper not healthy after 1s"):
        running.supervise([never_healthy])
