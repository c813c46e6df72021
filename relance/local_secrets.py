"""Per-installation secrets for development, kept in `var/local-secrets.json` (mode 0600).

The defaults in `relance/settings.py` are public (anyone can read the source), so a development
instance that signed or checked anything with them would accept forged requests: a Stripe event
signed with the default webhook secret recorded a payment (issue 17.2). In development, every
secret still at its default is replaced by a random value generated on first run and shared by
every process of the installation (api, action server, worker, Rasa's endpoints file) through this
file. Production never uses it: there, the settings refuse to start without real secrets.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import tempfile
from collections.abc import Iterable
from pathlib import Path

FILE_NAME = "local-secrets.json"


def load_or_create(var_dir: Path, names: Iterable[str]) -> dict[str, str]:
    """The installation's value for each name, generating (and storing) the missing ones.

    Processes starting together (`relance run` starts four) take an exclusive lock first, so they
    all end up with the same values; the file is written whole to a temporary file and moved into
    place, so a reader never sees half of it.
    """
    path = var_dir / FILE_NAME
    stored = _read(path)
    missing = [name for name in names if not stored.get(name)]
    if not missing:
        return stored
    var_dir.mkdir(parents=True, exist_ok=True)
    with open(var_dir / ".local-secrets.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stored = _read(path)  # another process may have written them while we waited
        missing = [name for name in names if not stored.get(name)]
        for name in missing:
            stored[name] = secrets.token_hex(32)  # hex: safe in URLs, YAML and command lines
        if missing:
            _write(path, stored)
    return stored


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"{path} is unreadable; delete it to generate new secrets") from exc
    if not isinstance(data, dict):
        raise RuntimeError(f"{path} is not a JSON object; delete it to generate new secrets")
    return {str(key): str(value) for key, value in data.items()}


def _write(path: Path, values: dict[str, str]) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".local-secrets-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(values, handle, indent=2, sort_keys=True)
        os.chmod(temporary, 0o600)  # mkstemp creates 0600 already; explicit for the reader
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
