# Two commands on a fresh clone: `make run` (the main job on the embedded model) and `make test`.
# Both create .venv, install breakfix with pinned versions, and prepare the offline assets first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test assets bench clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build of torch first and by exact version: anything else pulls CUDA wheels.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

assets: $(STAMP)
	$(BIN)/breakfix assets

run: assets
	$(BIN)/breakfix demo

test: assets
	$(BIN)/pytest --durations=15

bench: assets
	$(BIN)/python bench/generation.py

clean:
	rm -rf $(VENV) breakfix-runs .pytest_cache
