# Entry points. Each target first runs the idempotent set-up (scripts/setup.sh), so a fresh
# Debian 12 machine needs only `make test` or `make run`.
#   make test PYTEST_ARGS="-x -k sources"   extra arguments for pytest
.PHONY: setup-run setup-test test run bench

PYTHON := .venv/bin/python
PYTEST_ARGS ?=

setup-run:
	scripts/setup.sh run

setup-test:
	scripts/setup.sh test

test: setup-test
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy
	scripts/postgres.sh run -- $(PYTHON) -m pytest -q $(PYTEST_ARGS)

run: setup-run
	scripts/run.sh

bench: setup-test
	scripts/postgres.sh run -- $(PYTHON) -m bench
