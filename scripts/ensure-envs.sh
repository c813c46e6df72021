#!/usr/bin/env bash
# Create (or reuse) the two Python environments Relance needs.
#   .venv       app env, Python 3.11: api, action server, worker, CLI, tests (editable install).
#   .venv-rasa  Rasa 3.6.21 on Python 3.10 (it pins Python <3.11, SQLAlchemy 1.4, pydantic 1).
# The Rasa env is slow to build (TensorFlow), so it lives in a cache folder keyed by its
# requirements and is linked into the checkout; the app env is rebuilt only when pyproject changes.
# The two are built side by side (mostly downloads and unpacking), so a first run waits for the
# slower one only.
#   --for-tests  also install Debian's Chromium (browser tests); `make run` does not wait for it.
set -euo pipefail
FOR_TESTS=0
[ "${1:-}" = "--for-tests" ] && FOR_TESTS=1
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${RELANCE_CACHE_DIR:-$HOME/.cache/relance}"
mkdir -p "$CACHE"
cd "$ROOT"

find_python() {  # $1 = version prefix, e.g. 3.11
  local want="$1" candidate
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$want".*/bin/python "python$want"; do
    if command -v "$candidate" >/dev/null 2>&1; then command -v "$candidate"; return 0; fi
  done
  echo "Python $want not found (install it with pyenv: pyenv install $want)" >&2
  return 1
}

log() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }

# Both Pythons first, so a missing one is said before anything is built.
PY311="$(find_python 3.11)"
PY310="$(find_python 3.10)"

build_app_env() {
  log "creating the app environment (.venv, Python 3.11)"
  rm -rf .venv
  "$PY311" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".[dev]"
  echo "$app_stamp" > .venv/.relance-stamp
}

build_rasa_env() {
  log "creating the Rasa environment (Rasa 3.6.21, Python 3.10) in $rasa_env: a few minutes, once"
  rm -rf "$rasa_env"
  "$PY310" -m venv "$rasa_env"
  "$rasa_env/bin/pip" install -q --upgrade pip wheel 'setuptools<70'
  "$rasa_env/bin/pip" install -q -r requirements/rasa.txt
  touch "$rasa_env/.complete"  # only a finished install is reused
}

app_stamp=$(sha256sum pyproject.toml | cut -c1-16)
rasa_stamp=$(sha256sum requirements/rasa.txt | cut -c1-16)
rasa_env="$CACHE/venv-rasa-$rasa_stamp"
pids=()
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.relance-stamp 2>/dev/null)" != "$app_stamp" ]; then
  build_app_env & pids+=($!)
fi
if [ ! -f "$rasa_env/.complete" ]; then
  build_rasa_env & pids+=($!)
fi
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
if [ "$status" != 0 ]; then
  echo "error: building a Python environment failed (see above)" >&2
  exit 1
fi
ln -sfn "$rasa_env" .venv-rasa

# --- chromium for browser tests and screenshots (Debian package) ----------------------------
if [ "$FOR_TESTS" = 1 ] && [ "${RELANCE_SKIP_CHROMIUM:-0}" != "1" ] && ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    log "installing Debian chromium (browser tests)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: chromium could not be installed; browser tests will fail" >&2
  fi
fi
log "environments ready"
