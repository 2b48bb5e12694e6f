# Two commands on a fresh machine with Python 3.11 and make:
#   make run    set up .venv and run chatd on port 8123
#   make test   set up .venv and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8123

.PHONY: setup run test check fuzz bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		--config-settings editable_mode=compat -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/chatd --port $(PORT)

# Lint and types first (seconds), then the suite.
test: check
	$(BIN)/python -m pytest

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# chatd against the naive baseline, in one run: prints the table of
# docs/performance.md (about 5 minutes).
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# A longer byte-level fuzz of the protocol edge, outside the normal test run.
FUZZ_EXAMPLES ?= 20000
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:cacheprovider fuzz/fuzz_protocol.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
