# Filled in by the fast-embedded-server work (issue 13).
.PHONY: embedded
embedded: install
