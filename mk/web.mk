# Filled in by the field-app work (issue 15).
.PHONY: web browser
web: install
browser: install
