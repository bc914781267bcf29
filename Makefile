# The README's two commands: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint system bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,postgres]'
	touch $@

# make demo PORT=9000 for another port, HOST=0.0.0.0 to open it to the network (a phone on
# the LAN); set on the command line only (a PORT or HOST in the environment is not read).
PORT = 8000
HOST = 127.0.0.1
demo: $(STAMP)
	$(BIN)/sitecue demo --host $(HOST) --port $(PORT)

# From Debian's packages: Chromium for the browser tests, Node.js to rebuild the tag,
# PostgreSQL's server, which the store tests start in a throwaway cluster of their own, and
# nginx, which tests/test_deploy.py runs on deploy/nginx.conf in front of real nodes.
# Each only when missing: a Node.js installed some other way already brings its own npm.
APT_INSTALL = $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq
system:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(APT_INSTALL) chromium; }
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && $(APT_INSTALL) nodejs npm; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -qq && $(APT_INSTALL) postgresql; }
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || \
		{ $(SUDO) apt-get update -qq && $(APT_INSTALL) nginx-light; }

snippet/node_modules/.package-lock.json: snippet/package-lock.json
	cd snippet && npm ci --silent --no-audit --no-fund

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: system $(STAMP) snippet/node_modules/.package-lock.json lint
	$(BIN)/pytest

# wrk, from Debian's packages, is the load generator of bench/decide.py.
bench: $(STAMP)
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }
	$(BIN)/python bench/conditions.py
	$(BIN)/python bench/decision.py
	$(BIN)/python bench/decide.py
	$(BIN)/python bench/store.py
	$(BIN)/python bench/state.py
	$(BIN)/python bench/tokens.py
	$(BIN)/python bench/webhooks.py
