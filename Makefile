# newsqa: `make run` installs everything and serves the web chat; `make test` runs the suite.
# Each step leaves a stamp, so a second run skips work already done.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CHROMIUM := /usr/bin/chromium
PYTEST_ARGS ?=

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export GRADIO_ANALYTICS_ENABLED := False
export ANONYMIZED_TELEMETRY := False

.PHONY: install browser run test lint bench bench-index bench-qa eval clean

install: $(STAMP)

# torch first, pinned to the CPU build on disk: an unpinned torch would pull a CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

browser: $(CHROMIUM)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver

run: install
	$(BIN)/newsqa serve

lint: install
	$(BIN)/ruff check .

test: install browser lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench-index: install
	$(BIN)/newsqa bench --only index

bench-qa: install
	$(BIN)/newsqa bench --only qa

bench: install
	$(BIN)/newsqa bench

eval: install
	$(BIN)/newsqa eval --corpus ../shared/eval/realtimeqa/corpus.jsonl \
		--queries ../shared/eval/realtimeqa/queries_dev.jsonl

clean:
	rm -rf $(VENV) data test-output .pytest_cache .ruff_cache *.egg-info
