# Two commands set everything up: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean chromium

# emtwin needs Python >= 3.11: say so plainly (and how to pick another) before making the venv.
$(BIN)/python:
	@v=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); \
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "error: emtwin needs Python 3.11 or newer; PYTHON=$(PYTHON) is" \
	    "$${v:+Python }$${v:-not a working Python}." >&2; \
	  echo "Install Python >= 3.11 and run e.g. 'make PYTHON=python3.11 $(MAKECMDGOALS)'." >&2; \
	  exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/emtwin run riverside --out out/riverside
	@echo "Results are in out/riverside (summary.json, events.parquet, timeseries.parquet, ...)."
	@echo "Report: out/riverside/report.html; open it with: $(BIN)/emtwin view out/riverside"

# The real-browser tests (Playwright) drive the system's Chromium: `playwright install`
# cannot download browsers everywhere. Installed with apt-get where missing (as root, or
# with sudo); a no-op where present. Without it the browser tests are skipped, saying why.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    s=""; [ "$$(id -u)" -eq 0 ] || s="sudo -n"; \
	    echo "installing chromium with apt-get (for the real-browser tests)"; \
	    DEBIAN_FRONTEND=noninteractive $$s apt-get install -y --no-install-recommends chromium \
	      || { $$s apt-get update && DEBIAN_FRONTEND=noninteractive \
	           $$s apt-get install -y --no-install-recommends chromium; } \
	      || echo "warning: could not install chromium; the browser tests will be skipped" >&2; \
	  else \
	    echo "warning: no chromium and no apt-get; the browser tests will be skipped" >&2; \
	  fi; }

test: $(STAMP) chromium
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check emtwin tests benchmarks

clean:
	rm -rf out .pytest_cache
