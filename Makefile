# gankit: `make demo` trains the default recipe on embedded digits; `make test` runs the suite.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
THREADS ?= $(shell nproc)

.PHONY: setup espeak browser demo test lint clean

$(BIN)/gankit: pyproject.toml
	$(PY) -m venv $(VENV)
	# The CPU build lies on local disk; an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/gankit

setup: $(BIN)/gankit espeak

demo: setup
	rm -rf runs/demo  # the demo starts fresh each time; real runs refuse to overwrite
	$(BIN)/gankit train --seconds 180 --out runs/demo
	$(BIN)/gankit sample runs/demo --n 100 --out runs/demo/samples.png
	$(BIN)/gankit eval runs/demo
	@echo "demo: look at runs/demo/samples.png, runs/demo/progress.gif, runs/demo/losses.png; metrics in runs/demo/eval.json"

# Debian packages, installed when root and apt allow; without them the features that need them
# say so in one line and their tests are skipped with a message. espeak-ng speaks the corpus of
# `gankit study speech`; Chromium runs the studio's end-to-end tests (Playwright drives it; it
# never downloads a browser).
espeak:
	@test -x /usr/bin/espeak-ng || (apt-get update -qq && apt-get install -y -qq espeak-ng >/dev/null) \
		|| echo "could not install espeak-ng: gankit study speech and its espeak test need it"

browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "could not install chromium: the studio's browser tests will be skipped"

test: setup browser
	$(BIN)/python -m pytest tests

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf runs .pytest_cache
