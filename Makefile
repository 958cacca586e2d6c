# The two commands a new user needs: `make run` serves, `make test` checks.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint typecheck unit bench clean

$(BIN)/dupes: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/dupes
	$(BIN)/dupes serve $(ARGS)

lint: $(BIN)/dupes
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/dupes
	$(BIN)/mypy

unit: $(BIN)/dupes
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck unit

clean:
	rm -rf $(VENV) .dupes .pytest_cache .mypy_cache .ruff_cache
