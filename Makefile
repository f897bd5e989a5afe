# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install browser run test lint bench load faults clean

# uv installs the same pins in a fraction of pip's time (pip keeps no cache here); where uv cannot be had
# or fails, pip does the whole install as before.
UV_VERSION := 0.13.8
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	if $(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION) && \
		VIRTUAL_ENV=$(CURDIR)/$(VENV) UV_NATIVE_TLS=1 $(BIN)/uv pip install --quiet -e '.[dev]'; then :; \
	else echo "uv unavailable: installing with pip"; $(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'; fi
	touch $(STAMP)

install: $(STAMP)

# The fast embedded database server (secantusd-rs), built once per machine: targets `embedded`.
include mk/embedded.mk
# The web app (web/ -> server/static/app): targets `web`, `web-check`.
include mk/web.mk

# The browser tests drive Debian's chromium; CI runs as root on Debian, so it is installed there.
browser: install
	@if [ -x /usr/bin/chromium ] && { ! command -v dpkg >/dev/null || dpkg -s fonts-noto-cjk >/dev/null 2>&1; }; then :; \
	elif [ "$$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	else echo "Browser tests skipped: install Debian's chromium and fonts-noto-cjk (sudo apt-get install chromium fonts-noto-cjk)"; fi

## make run: set up, start the embedded database and serve on 127.0.0.1:8080 with demo data
run: install embedded web
	$(BIN)/branch-audit serve

## make test: set up, then the whole suite on the embedded default, and a smoke subset on the Python fallback
# One pytest worker per core, each with its own database server, ports and directories; tests that share a
# server process or measure timing are kept on one worker by xdist groups (tests/conftest.py).
PYTEST_PARALLEL ?= -n auto --dist loadgroup
test: install embedded web browser
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_PARALLEL)
	@if [ -x "$(SECANTUSD_RS)" ] && [ "$$EMBEDDED_DB" != python ] && [ -z "$$MONGODB_URI" ]; then \
		echo "smoke tests on the Python fallback (secantusd-py):"; \
		EMBEDDED_DB=python $(BIN)/pytest -q -p no:cacheprovider $(PYTEST_PARALLEL) -m smoke; fi

lint: install
	$(BIN)/ruff check server schemas tests
	$(BIN)/mypy

bench: install embedded web browser
	$(BIN)/python -m bench.run

load: install embedded
	$(BIN)/python -m bench.load

faults: install embedded
	$(BIN)/python -m bench.faults

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
