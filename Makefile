# Two entry points: `make demo` (install + run the workflow on the simulated demo + report) and
# `make test` (install if needed + pytest). Everything installs into .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
# The slowest tests are listed after every run, so CI logs show where the time goes. Two
# pytest-xdist processes: one makes the SLURM run while the other builds the demo, then both share
# the rest (tests/conftest.py orders and groups them).
PYTEST_ARGS ?= --durations=15 -n 2 --dist loadgroup --no-loadscope-reorder
SYSTEM_TOOLS := macs2 bedtools tabix bgzip samtools
DEBIAN_PACKAGES := macs bedtools tabix samtools

.PHONY: install system-packages demo report test lint dryrun clean

install: system-packages $(STAMP)

# MACS2, bedtools, tabix and samtools come from Debian; installed when run as root.
system-packages:
	@missing=""; for tool in $(SYSTEM_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian packages for:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_PACKAGES) >/dev/null; \
	  else \
	    echo "Missing tools:$$missing. Install them (Debian/Ubuntu: sudo apt-get install $(DEBIAN_PACKAGES))" >&2; exit 1; \
	  fi; \
	fi

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=23"
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --cores $(CORES)
	$(MAKE) report

# The self-contained HTML report (figures, tables and captions) of the finished run.
report: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --report results/report.html

test: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -ra $(PYTEST_ARGS)

lint: install
	$(BIN)/snakemake --lint

dryrun: install
	$(BIN)/snakemake -n

clean:
	rm -rf results logs .snakemake
