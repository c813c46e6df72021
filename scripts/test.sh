#!/usr/bin/env bash
# The whole test suite, as CI runs it: envs, lint, bot data validation + training (CI config) +
# test stories, then pytest on SQLite and again on PostgreSQL (DATABASE_URL switch).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PG_URL="${RELANCE_TEST_PG_URL:-postgresql://postgres@localhost:5432/relance_test}"
step() { printf '\n\033[1;34m==> %s\033[0m\n' "$*"; }

step "environments"
scripts/ensure-envs.sh --for-tests

step "prerequisites (relance doctor)"
.venv/bin/relance doctor --for test

step "lint (ruff check, ruff format --check, vulture: no dead code)"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/vulture

step "types (mypy, strict; config in pyproject.toml)"
.venv/bin/mypy

step "import contracts (import-linter, .importlinter)"
.venv/bin/lint-imports

step "assistant: rasa data validate, training (CI config, cached), test stories"
.venv/bin/relance bot test --ci

# Two workers (pytest-xdist) on CI's two cores; `loadgroup` keeps each real-process stack (the
# e2e stack, the browser server) on one worker (tests/conftest.py marks the groups). Under
# PostgreSQL each worker gets its own database (<name>_gw0, <name>_gw1).
WORKERS="${RELANCE_TEST_WORKERS:-2}"

step "pytest on SQLite ($WORKERS workers)"
.venv/bin/python -m pytest -n "$WORKERS" --dist loadgroup "$@"

step "pytest on PostgreSQL ($PG_URL, $WORKERS workers)"
.venv/bin/python -m relance.db.provision "$PG_URL"
# tests/bot never touches the database (the ensemble round trip alone is minutes), nor do the tests
# marked `once` (the 300-turn conversation proves a message-size limit): once is enough.
TEST_DATABASE_URL="$PG_URL" .venv/bin/python -m pytest -n "$WORKERS" --dist loadgroup \
  --ignore=tests/bot -m "not once" "$@"
