# Two commands on a fresh machine: `make run` and `make test`. Everything else is a step they share.
#
# The Python is the newest supported one on this machine (3.13, then 3.12, then 3.11; tools/pythons
# finds them, pyenv's installs included); PYTHON=python3.12 (or a path) picks another.
PYTHONS := $(shell tools/pythons)
PYTHON ?= $(firstword $(PYTHONS))
PY := $(if $(PYTHON),$(shell tools/pythons --check '$(PYTHON)'))
PY_VERSION := $(if $(PY),$(shell '$(PY)' -c 'import sys; print("%d.%d" % sys.version_info[:2])'))
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The interpreter the existing venv was made with: a venv of another one (an older checkout's 3.11,
# say) is rebuilt rather than kept.
VENV_PY := $(realpath $(shell sed -n 's/^executable = //p' $(VENV)/pyvenv.cfg 2>/dev/null))

# Python 3.13 removed PyEval_CallObject, which durable-rules 2.0.28 (unmaintained) still calls: it is
# built from source with that name mapped onto its replacement; its setup ignores CFLAGS, so the define
# rides on CC. On 3.11 and 3.12 the header's own definition of the name wins. The README gives the same
# command for a plain pip install.
PIP_INSTALL := CC="gcc -DPyEval_CallObject=PyObject_CallObject" $(BIN)/pip install -q --no-binary durable-rules
DURABLE := $(shell grep -o 'durable-rules==[0-9.]*' setup.cfg)

LEADGATE_HOST ?= 127.0.0.1
LEADGATE_PORT ?= 8000
LEADGATE_WORKERS ?= 2

CHROMEDRIVER := /usr/bin/chromedriver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-compat compat-run lint workflows bench install python browser postgresql clean

python:
	@if [ -z "$(PY)" ]; then \
		$(if $(PYTHON),echo "PYTHON=$(PYTHON) cannot be used (see above)" >&2, tools/pythons --explain >/dev/null); \
		exit 1; \
	fi
	@echo "Python $(PY_VERSION): $(PY)$(if $(filter file,$(origin PYTHON)), (the newest supported here; PYTHON= picks another), (PYTHON=$(PYTHON)))"

ifneq ($(VENV_PY),$(PY))
.PHONY: $(BIN)/python
endif
$(BIN)/python: | python
	@[ -z "$(VENV_PY)" ] || echo "$(VENV) was made with $(VENV_PY): rebuilding it with $(PY)"
	rm -rf $(VENV)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Re-install only when the packaging changes; durable-rules compiles with the machine's gcc here.
# A new top-level package needs a re-install too (editable installs map packages when installed).
# pip reuses a wheel it built before, whatever CC was then: one built without the define does not
# import on 3.13, so it is rebuilt once without the cache.
$(STAMP): $(BIN)/python setup.cfg pyproject.toml $(wildcard */__init__.py)
	$(PIP_INSTALL) -e '.[test,suggest]'
	$(BIN)/python -c 'import durable_rules_engine' 2>/dev/null \
		|| $(PIP_INSTALL) --no-cache-dir --force-reinstall --no-deps $(DURABLE)
	$(BIN)/python -c 'import durable_rules_engine'
	touch $(STAMP)

install: python $(STAMP)

# The webhook deliverer runs beside the server and stops with it (Ctrl-C stops both).
run: install
	$(BIN)/leadgate deliver & deliverer=$$!; trap 'kill $$deliverer 2>/dev/null' EXIT; \
	$(BIN)/leadgate serve --host $(LEADGATE_HOST) --port $(LEADGATE_PORT) --workers $(LEADGATE_WORKERS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Every GitHub workflow passes zizmor's audit (template injection, unpinned actions, credentials).
workflows: install
	$(BIN)/zizmor --offline --no-progress .github/workflows

# The review pages are tested in a real browser: Debian's Chromium and its driver, from the system packages.
$(CHROMEDRIVER):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver

browser: $(CHROMEDRIVER)

# The PostgreSQL tests start a server of their own (tests/postgres.py) from Debian's packages.
INITDB := $(firstword $(wildcard /usr/lib/postgresql/*/bin/initdb) $(shell command -v initdb))

postgresql:
	@if [ -z "$(INITDB)" ]; then \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql; \
	fi

test: lint workflows browser postgresql
	$(BIN)/python -m pytest

# The other supported Pythons on this machine, each in its own venv (.venv-3.x): the engine, the shipped
# cases and the API tests; and a trail recorded under one interpreter, verified and replayed decision by
# decision under the other, both ways (tests/compat.py).
OTHERS := $(filter-out $(PY),$(PYTHONS))
COMPAT_TESTS := tests/test_engine_semantics.py tests/test_shipped_rulesets.py tests/test_cases_runner.py \
	tests/test_api.py
COMPAT := test-artefacts/compat

test-compat: install
	@[ -n "$(OTHERS)" ] || echo "test-compat: no other supported Python on this machine"
	rm -rf $(COMPAT)
	$(BIN)/python -m tests.compat record $(COMPAT)/$(PY_VERSION).db
	@set -e; for py in $(OTHERS); do \
		v=$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
		$(MAKE) --no-print-directory compat-run VENV=.venv-$$v PYTHON=$$py RECORDED=$(COMPAT)/$(PY_VERSION).db; \
		echo "$(BIN)/python -m tests.compat check $(COMPAT)/$$v.db"; \
		$(BIN)/python -m tests.compat check $(COMPAT)/$$v.db; \
	done

compat-run: install
	$(BIN)/python -m pytest -q -p no:cacheprovider $(COMPAT_TESTS)
	$(BIN)/python -m tests.compat check $(RECORDED)
	$(BIN)/python -m tests.compat record $(COMPAT)/$(PY_VERSION).db

bench: install
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) .venv-3.* build *.egg-info test-artefacts
