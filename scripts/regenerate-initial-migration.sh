#!/usr/bin/env bash
# Pre-release only: rebuild the single initial migration from the models (no deployment exists
# yet, so history is not worth keeping). After the first release, add migrations instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PY:-.venv/bin/python}"
rm -f relance/db/migrations/versions/0001_initial*.py
tmp=$(mktemp -d)
"$PY" - "$tmp" <<'PY'
import sys
from alembic import command
from relance.db.migrate import alembic_config
config = alembic_config(f"sqlite:///{sys.argv[1]}/empty.db")
command.revision(config, message="initial schema", autogenerate=True, rev_id="0001_initial")
PY
rm -rf "$tmp"
"${PY%python}ruff" check --fix -q relance/db/migrations/versions/ || true
"${PY%python}ruff" format -q relance/db/migrations/versions/ || true
