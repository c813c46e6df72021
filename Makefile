# Thin wrappers: everything real lives in scripts/ and the `relance` CLI.
.PHONY: run test lint

run:  ## the whole stack on embedded defaults, demo portfolio and debtor simulator
	@scripts/ensure-envs.sh
	@.venv/bin/relance run

test:  ## everything CI runs
	@scripts/test.sh

lint:
	@.venv/bin/ruff check .
