# The two commands that matter: `make demo` and `make test` (README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= $(abspath ../shared/data)
CATALOG ?= $(DATA)/catalog
PHOTOS ?= $(DATA)/photos

.PHONY: demo test setup browser index lint train-env clean

$(BIN)/cardscan: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

setup: $(BIN)/cardscan

# Debian's Chromium drives the annotator page's end-to-end test (never a downloaded browser).
browser:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

demo: setup
	$(BIN)/cardscan db upgrade
	$(BIN)/cardscan catalog import $(CATALOG)
	$(BIN)/cardscan catalog stats
	$(BIN)/cardscan index build --catalog $(CATALOG)
	$(BIN)/cardscan prices generate --out var/demo/prices.csv
	$(BIN)/cardscan prices import var/demo/prices.csv
	$(BIN)/cardscan prices valuate
	$(BIN)/python -m scripts.demo_service $(PHOTOS)/images/dsk_nextdoorpsycho
	$(BIN)/cardscan scan $(PHOTOS)/images --out var/demo/results.jsonl
	$(BIN)/cardscan eval $(PHOTOS)/labels.csv --results var/demo/results.jsonl

# The FAISS index is built from the catalog, never committed (the card images are not ours).
index: setup
	$(BIN)/cardscan index build --catalog $(CATALOG)

test: lint browser index
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check vision models db pipeline api scripts tests
	$(BIN)/ruff format --check vision models db pipeline api scripts tests
	$(BIN)/mypy

# Training runs in its own environment (torch + ultralytics); serving never imports torch.
train-env: pyproject.toml
	test -x .venv-train/bin/python || $(PYTHON) -m venv .venv-train
	.venv-train/bin/pip install -q -e '.[train]'

clean:
	rm -rf var/broker var/objects
