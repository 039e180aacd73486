# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# The client developer's kit (kit/, its own distribution) is installed and tested too.
$(VENV)/.dev-installed: pyproject.toml kit/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e './kit[redis]'
	touch $(VENV)/.installed $@

## run: install, migrate, create the first staff account if needed, serve on http://127.0.0.1:8000
run: $(VENV)/.installed
	$(BIN)/pitpass setup
	$(BIN)/pitpass serve --host 127.0.0.1 --port 8000

## test: install the dev dependencies, check style, types and layers, run the whole suite
test: $(VENV)/.dev-installed lint
	$(BIN)/python -m pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench kit
	$(BIN)/ruff format --check src tests bench kit
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo

## bench: the registration lists benchmark (JSON on stdout); see bench/ for the scenarios
bench: $(VENV)/.dev-installed
	$(BIN)/python -m bench registration

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
