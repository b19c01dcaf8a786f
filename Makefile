# Two commands on a fresh clone: `make run` (the main job on the embedded model) and `make test`.
# Both create .venv, install breakfix with pinned versions, and prepare the offline assets first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test assets browser bench clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build of torch first and by exact version: anything else pulls CUDA wheels.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

assets: $(STAMP)
	$(BIN)/breakfix assets

# The main job: two break-fix rounds on the embedded model; prints where the report is.
run: assets
	$(BIN)/breakfix run --config recipes/quick.yaml

test: assets browser
	$(BIN)/pytest --durations=15

# The report tests open the report in headless Chromium (Debian's `chromium`); install it when
# this machine lets us, otherwise say so (those tests skip locally and fail under CI=true).
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || true; \
	    else echo "note: no chromium; install it (apt-get install chromium) to run the report tests"; fi; }

bench: assets
	$(BIN)/python bench/generation.py

clean:
	rm -rf $(VENV) breakfix-runs .pytest_cache
