# vcsync: two commands do everything on a fresh machine: `make demo`, `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install binaries binaries-skew demo test lint typecheck unit cluster-tests clean

$(STAMP): pyproject.toml
	@$(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "vcsync needs Python 3.11")'
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Build the pinned Kubernetes components from Go modules (cached in ~/.cache/vcsync).
binaries:
	$(PY) -m syncer.local.binaries

## Also build the version-skew Kubernetes release.
binaries-skew:
	$(PY) -m syncer.local.binaries --skew

## Start a host cluster and a virtual control plane; Ctrl-C stops them.
demo: install binaries
	$(BIN)/python -m syncer.local.demo

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

## Lint, type-check, then the whole test suite (pytest's "no tests" exit 5 is a failure).
test: install binaries-skew lint typecheck
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

unit: install
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
