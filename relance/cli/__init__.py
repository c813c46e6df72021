"""The `relance` command. Each feature adds a sub-command module registered in `main.py`."""

from relance.cli.main import app

__all__ = ["app"]
