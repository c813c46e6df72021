# Thin wrappers: everything real lives in scripts/ and the `relance` CLI.
# PORT_OFFSET moves every port of the stack (api 8000, Rasa 5005, actions 5055, sandbox 8099).
PORT_OFFSET ?= 0
.PHONY: run test lint doctor

run:  ## the whole stack on embedded defaults, demo portfolio and debtor simulator
	@python3 -m relance.runtime.doctor --for run --port-offset $(PORT_OFFSET)
	@scripts/ensure-envs.sh
	@.venv/bin/relance run --port-offset $(PORT_OFFSET)

test:  ## everything CI runs
	@scripts/test.sh

doctor:  ## check this machine's prerequisites, with the fix for each missing one
	@python3 -m relance.runtime.doctor --for test --port-offset $(PORT_OFFSET)

lint:
	@.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/vulture
	@.venv/bin/mypy
