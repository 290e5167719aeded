# gankit: `make demo` installs gankit and trains the default recipe on embedded digits; `make test` runs the suite.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
DEMO_SECONDS ?= 180

.PHONY: setup espeak browser demo test lint clean

# The core package: what `make demo` needs (no extras, no system packages).
$(BIN)/gankit: pyproject.toml
	$(PY) -m venv $(VENV)
	# The CPU build lies on local disk; an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e .
	touch $(BIN)/gankit

# Tests and lint: the [dev] extra (test tools + the studio and export extras it tests).
# Two reference implementations our feature extractors are tested against, with --no-deps: torch-
# fidelity's InceptionV3 (tests/test_inception_reference.py; it requires torchvision, which does
# not import beside this torch, and the test loads only its modules that do not import it) and
# DINOv2's original model code (tests/test_dinov2_reference.py; the PyPI `dinov2` package pins
# torch 2.0, xformers and cuml for training, none of which its model code needs).
$(VENV)/.dev: $(BIN)/gankit pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps torch-fidelity==0.4.0 dinov2==0.0.1.dev2
	touch $(VENV)/.dev

setup: $(VENV)/.dev espeak

demo: $(BIN)/gankit
	rm -rf runs/demo  # the demo starts fresh each time; real runs refuse to overwrite
	$(BIN)/gankit train --seconds $(DEMO_SECONDS) --out runs/demo
	$(BIN)/gankit sample runs/demo --seeds 0-99 --out runs/demo/samples.png
	$(BIN)/gankit eval runs/demo
	@echo ""
	@echo "demo: runs/demo/samples.png (seeds 0-99), progress.gif, losses.png; scores in runs/demo/eval.json"
	@echo "next, type (README: Quick start):"
	@echo "  source .venv/bin/activate                            # gankit on the PATH (or type .venv/bin/gankit)"
	@echo "  gankit sample runs/demo --seeds 0-15 --out grid.png  # 16 digits, image k drawn from seed k"
	@echo "  gankit eval runs/demo                                # scores: see README, Reading the numbers"
	@echo "  gankit train --seconds 900 --out runs/long           # a longer run: clearer digits"
	@echo "the studio in your browser: pip install -e '.[studio]', then gankit serve runs/demo runs/long"

# Debian packages, installed when root and apt allow; without them the features that need them
# say so in one line and their tests are skipped with a message. espeak-ng speaks the corpus of
# the speech family (`gankit train speech_digits`, `gankit study speech`); Chromium runs the
# studio's end-to-end tests (Playwright drives it; it never downloads a browser). `make demo`
# needs neither.
espeak:
	@test -x /usr/bin/espeak-ng || (apt-get update -qq && apt-get install -y -qq espeak-ng >/dev/null) \
		|| echo "could not install espeak-ng: the speech family (speech_digits, gankit study speech) and its test need it"

browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "could not install chromium: the studio's browser tests will be skipped"

test: setup browser
	$(BIN)/python -m pytest tests

lint: $(VENV)/.dev
	$(BIN)/ruff check .

clean:
	rm -rf runs .pytest_cache
