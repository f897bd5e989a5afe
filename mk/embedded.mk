# The fast embedded database server, secantusd-rs (crate secantus-mdb, GPL-2.0: run as a separate process).
# Built once per machine with cargo and cached outside the clone, keyed by version, so a fresh clone on the
# same machine reuses it. Without cargo, or when the build fails, `make` still succeeds and says in one line
# that the Python fallback (secantusd-py) will be used. The version is the one server/embedded.py runs.
SECANTUSD_RS_VERSION := $(shell sed -n 's/^SECANTUSD_RS_VERSION = "\(.*\)"/\1/p' server/embedded.py)
# The crate's minimum Rust; rustup installs it next to the machine's default toolchain if missing.
SECANTUSD_RS_TOOLCHAIN := 1.98
SECANTUSD_RS_ROOT := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/branch-audit/secantusd-rs/$(SECANTUSD_RS_VERSION)
SECANTUSD_RS := $(SECANTUSD_RS_ROOT)/bin/secantusd-rs

.PHONY: embedded embedded-retry

embedded: install
	@sh mk/build-secantusd-rs.sh "$(SECANTUSD_RS_VERSION)" "$(SECANTUSD_RS_TOOLCHAIN)" "$(SECANTUSD_RS_ROOT)"

## make embedded-retry: forget a failed build of secantusd-rs and try again
embedded-retry:
	@rm -f "$(SECANTUSD_RS_ROOT).failed"
	@sh mk/build-secantusd-rs.sh "$(SECANTUSD_RS_VERSION)" "$(SECANTUSD_RS_TOOLCHAIN)" "$(SECANTUSD_RS_ROOT)"
