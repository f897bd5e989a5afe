# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint bench load faults clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The fast embedded database server (secantusd-rs), built once per machine: targets `embedded`.
include mk/embedded.mk
# The web app (web/ -> server/static/app), and the browser the tests drive: targets `web`, `browser`.
include mk/web.mk

## make run: set up, start the embedded database and serve on 127.0.0.1:8080 with demo data
run: install embedded web
	$(BIN)/branch-audit serve

## make test: set up, then the whole suite on the embedded default, and a smoke subset on the Python fallback
test: install embedded web browser
	$(BIN)/pytest -q -p no:cacheprovider
	@if [ -x "$(SECANTUSD_RS)" ] && [ "$$EMBEDDED_DB" != python ] && [ -z "$$MONGODB_URI" ]; then \
		echo "smoke tests on the Python fallback (secantusd-py):"; \
		EMBEDDED_DB=python $(BIN)/pytest -q -p no:cacheprovider -m smoke; fi

lint: install
	$(BIN)/ruff check server schemas tests
	$(BIN)/mypy

bench: install embedded web
	$(BIN)/python -m bench.run

load: install embedded
	$(BIN)/python -m bench.load

faults: install embedded
	$(BIN)/python -m bench.faults

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
