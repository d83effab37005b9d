# Quick start: `make report` (sets up .venv, prints the claims report) and `make test`
# (sets up .venv, runs ruff and the whole test suite). Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The torch pair that pip takes from local disk on the project's machines (x86_64, Python 3.11).
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: setup report test fast lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

report: setup
	$(BIN)/python -m claims report

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

fast: setup
	$(BIN)/python -m pytest -m fast

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .benchmarks
