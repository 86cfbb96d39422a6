# Two entry points (see README.md): `make demo` runs the main job on embedded
# defaults, `make test` runs the whole suite against real servers. Both set up
# what they need themselves on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/servicedesk demo

run: $(STAMP)
	$(BIN)/servicedesk run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

test: $(STAMP)
	bash scripts/test-servers.sh
	$(BIN)/ruff check .
	$(BIN)/mypy .
	$(BIN)/pytest

bench: $(STAMP)
	bash scripts/test-servers.sh
	$(BIN)/python bench/imap_ingest.py
	$(BIN)/python bench/hostile.py

clean:
	rm -rf $(VENV) servicedesk-data .pytest_cache .mypy_cache .ruff_cache
