"""`relance doctor`: are this machine's prerequisites in place, and what to do for each missing one.

It runs first in `make run`, before either Python environment exists, so it uses the standard
library only and runs under any Python 3.9+ (`python3 -m relance.runtime.doctor`). Each check
says whether `make run` needs it or only `make test` does; a missing `run` prerequisite stops
`make run` with the fix printed, instead of failing ten minutes later inside pip or Rasa.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

Need = Literal["run", "test"]
BOTH: frozenset[Need] = frozenset(("run", "test"))

# Default ports of the stack (relance/runtime/stack.Ports), moved together by --port-offset.
DEFAULT_PORTS = {
    "api": 8000,
    "rasa": 5005,
    "actions": 5055,
    "twilio-sandbox": 8099,
    "smtp-sink": 8025,
}
# TensorFlow and its friends: a fresh Rasa environment takes about 3 GB, the models and the
# app environment a little more.
FRESH_DISK_BYTES = 6 * 1024**3
WARM_DISK_BYTES = 1 * 1024**3
DEFAULT_TEST_PG_URL = "postgresql://postgres@localhost:5432/relance_test"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    needed_by: frozenset[Need]
    detail: str
    fix: str = ""


def cache_dir() -> Path:
    return Path(os.environ.get("RELANCE_CACHE_DIR", Path.home() / ".cache" / "relance"))


def find_python(version: str) -> str | None:
    """The same search as scripts/ensure-envs.sh: pyenv's versions first, then the PATH."""
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    for candidate in sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python")):
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which(f"python{version}")


def check_python(version: str, why: str) -> Check:
    found = find_python(version)
    return Check(
        f"Python {version}",
        found is not None,
        BOTH,
        f"{found} ({why})" if found else f"not found ({why})",
        f"pyenv install {version}   (or your distribution's python{version} with venv)",
    )


def check_disk(path: Path) -> Check:
    rasa_built = any(cache_dir().glob("venv-rasa-*/.complete"))
    needed = WARM_DISK_BYTES if rasa_built else FRESH_DISK_BYTES
    probe = path if path.exists() else path.parent
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    return Check(
        "disk space",
        free >= needed,
        BOTH,
        f"{free / 1024**3:.1f} GB free under {probe}, {needed / 1024**3:.0f} GB needed"
        + ("" if rasa_built else " (first run: the Rasa environment and models)"),
        "free some space, or point RELANCE_CACHE_DIR at a larger disk",
    )


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_ports(offset: int) -> list[Check]:
    checks = []
    for name, default in DEFAULT_PORTS.items():
        port = default + offset
        free = port_free(port)
        checks.append(
            Check(
                f"port {port} ({name})",
                free,
                frozenset(("run",)),  # the tests start their stacks on free ports
                "free" if free else "already in use (another stack, or another program)",
                "stop what listens there, or run beside it: make run PORT_OFFSET=100 "
                "(relance run --port-offset 100)",
            )
        )
    return checks


def check_postgres(url: str) -> Check:
    parts = urlsplit(url)
    host, port = parts.hostname or "localhost", parts.port or 5432
    try:
        with socket.create_connection((host, port), timeout=2):
            reachable = True
    except OSError:
        reachable = False
    return Check(
        "PostgreSQL",
        reachable,
        frozenset(("test",)),
        f"{host}:{port} "
        + ("accepts connections" if reachable else "does not answer")
        + " (the second pass of make test; set RELANCE_TEST_PG_URL to use another server)",
        "apt-get install postgresql, then start it (pg_ctlcluster <version> main start)",
    )


def find_chromium() -> str | None:
    """RELANCE_CHROMIUM if set, else `chromium` on the PATH (Debian's package). The browser
    tests use the same search, so the doctor and the tests never disagree."""
    return os.environ.get("RELANCE_CHROMIUM") or shutil.which("chromium")


def check_chromium() -> Check:
    found = find_chromium()
    return Check(
        "Chromium",
        bool(found),
        frozenset(("test",)),
        f"{found} (browser tests)" if found else "not found (browser tests only)",
        "apt-get install chromium (make test installs it when run as root), "
        "or set RELANCE_CHROMIUM to a Chromium binary",
    )


def run_checks(port_offset: int = 0, pg_url: str | None = None) -> list[Check]:
    return [
        check_python("3.11", "api, actions, worker, tests"),
        check_python("3.10", "Rasa 3.6 needs Python < 3.11"),
        check_disk(cache_dir()),
        *check_ports(port_offset),
        check_postgres(pg_url or os.environ.get("RELANCE_TEST_PG_URL", DEFAULT_TEST_PG_URL)),
        check_chromium(),
    ]


def blocking(checks: Sequence[Check], purpose: Need) -> list[Check]:
    """The failed checks that stop `purpose`; the others are only warnings for it."""
    return [c for c in checks if not c.ok and purpose in c.needed_by]


def report(checks: Sequence[Check], purpose: Need, colour: bool) -> str:
    def paint(text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if colour else text

    lines = []
    stopping = blocking(checks, purpose)
    for check in checks:
        if check.ok:
            mark = paint("ok  ", "32")
        elif check in stopping:
            mark = paint("FAIL", "31")
        else:
            mark = paint("warn", "33")
        lines.append(f"{mark} {check.name}: {check.detail}")
        if not check.ok:
            lines.append(f"       fix: {check.fix}")
    if stopping:
        lines.append(paint(f"{len(stopping)} prerequisite(s) of `make {purpose}` missing.", "31"))
    else:
        lines.append(paint(f"ready for `make {purpose}`.", "32"))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="relance doctor", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--for",
        dest="purpose",
        choices=("run", "test"),
        default="test",
        help="what to check for (default: test)",
    )
    parser.add_argument(
        "--port-offset", type=int, default=0, help="check the ports of a stack moved by this much"
    )
    args = parser.parse_args(argv)
    checks = run_checks(args.port_offset)
    print(report(checks, args.purpose, colour=sys.stdout.isatty()))
    return 1 if blocking(checks, args.purpose) else 0


if __name__ == "__main__":
    sys.exit(main())
