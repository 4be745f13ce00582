# Two commands on a fresh machine: `make run` and `make test`. Everything else is a step they share.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LEADGATE_HOST ?= 127.0.0.1
LEADGATE_PORT ?= 8000
LEADGATE_WORKERS ?= 2

CHROMEDRIVER := /usr/bin/chromedriver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint bench install browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Re-install only when the packaging changes; durable-rules compiles with the machine's gcc here.
# A new top-level package needs a re-install too (editable installs map packages when installed).
$(STAMP): $(BIN)/python setup.cfg pyproject.toml $(wildcard */__init__.py)
	$(BIN)/pip install -q -e '.[test,suggest]'
	touch $(STAMP)

install: $(STAMP)

# The webhook deliverer runs beside the server and stops with it (Ctrl-C stops both).
run: install
	$(BIN)/leadgate deliver & deliverer=$$!; trap 'kill $$deliverer 2>/dev/null' EXIT; \
	$(BIN)/leadgate serve --host $(LEADGATE_HOST) --port $(LEADGATE_PORT) --workers $(LEADGATE_WORKERS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The review pages are tested in a real browser: Debian's Chromium and its driver, from the system packages.
$(CHROMEDRIVER):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver

browser: $(CHROMEDRIVER)

test: lint browser
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) build *.egg-info test-artefacts
