"""`relance doctor`: each missing prerequisite is reported with its fix, and only what `make run`
needs stops `make run`."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from relance.runtime import doctor


def _by_name(checks: list[doctor.Check], prefix: str) -> doctor.Check:
    return next(c for c in checks if c.name.startswith(prefix))


def test_a_missing_python_fails_run_with_the_pyenv_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no python3.10 on the PATH either
    check = doctor.check_python("3.10", "Rasa")
    assert not check.ok
    assert check.needed_by == {"run", "test"}
    assert "pyenv install 3.10" in check.fix
    assert doctor.blocking([check], "run") == [check]


def test_a_pyenv_python_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    python = tmp_path / "versions" / "3.10.13" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    assert doctor.check_python("3.10", "Rasa").ok


def test_a_busy_port_fails_with_the_offset_advice() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        offset = port - doctor.DEFAULT_PORTS["api"]
        checks = doctor.check_ports(offset)
    api = _by_name(checks, f"port {port}")
    assert not api.ok
    assert "PORT_OFFSET" in api.fix
    assert doctor.blocking(checks, "run")
    assert not doctor.blocking(checks, "test"), "the tests pick free ports of their own"


def test_postgres_and_chromium_only_stop_the_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        postgres = doctor.check_postgres(f"postgresql://postgres@127.0.0.1:{port}/x")
    monkeypatch.delenv("RELANCE_CHROMIUM", raising=False)
    monkeypatch.setattr(doctor.shutil, "which", lambda name: None)
    chromium = doctor.check_chromium()
    assert not postgres.ok and not chromium.ok
    assert doctor.blocking([postgres, chromium], "run") == []
    assert doctor.blocking([postgres, chromium], "test") == [postgres, chromium]
    text = doctor.report([postgres, chromium], "run", colour=False)
    assert "warn PostgreSQL" in text and "apt-get install chromium" in text
    assert "ready for `make run`" in text


def test_disk_space_needs_more_before_the_rasa_environment_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELANCE_CACHE_DIR", str(tmp_path))
    free = 3 * 1024**3

    class Usage:
        def __init__(self, free: int) -> None:
            self.free = free

    monkeypatch.setattr(doctor.shutil, "disk_usage", lambda path: Usage(free))
    assert not doctor.check_disk(tmp_path).ok  # a fresh machine needs room for TensorFlow
    (tmp_path / "venv-rasa-abc").mkdir()
    (tmp_path / "venv-rasa-abc" / ".complete").touch()
    assert doctor.check_disk(tmp_path).ok


def test_main_exit_code_follows_the_blocking_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    failing = doctor.Check("Python 3.10", False, doctor.BOTH, "not found", "pyenv install 3.10")
    monkeypatch.setattr(doctor, "run_checks", lambda offset: [failing])
    assert doctor.main(["--for", "run"]) == 1
    warning = doctor.Check(
        "Chromium", False, frozenset({"test"}), "not found", "apt-get install chromium"
    )
    monkeypatch.setattr(doctor, "run_checks", lambda offset: [warning])
    assert doctor.main(["--for", "run"]) == 0
    assert doctor.main(["--for", "test"]) == 1


def test_the_doctor_runs_without_the_app_environment() -> None:
    """`make run` calls it before .venv exists: standard library only."""
    import ast

    source = Path(doctor.__file__).read_text(encoding="utf-8")
    imported = {
        (node.module or "").split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom)
    } | {
        alias.name.split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    import sys

    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
