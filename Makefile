# vcsync: two commands do everything on a fresh machine: `make demo`, `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install binaries binaries-skew binaries-conformance demo test reliability lint typecheck unit cluster-tests clean

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

## Also build e2e.test and ginkgo for the conformance runs (~5 min, not part of `binaries`).
binaries-conformance:
	$(PY) -m syncer.local.binaries --skew --conformance

## Start a host cluster and a virtual control plane; Ctrl-C stops them.
demo: install binaries
	$(BIN)/python -m syncer.local.demo

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

# pytest, with its "no tests collected" exit 5 turned into a failure.
define run_pytest
	@$(BIN)/pytest $(1) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc
endef

## Lint, type-check, then the whole test suite (the reliability suite and the conformance
## subset at their CI size; builds e2e.test if missing).
test: install binaries-conformance lint typecheck
	$(call run_pytest,)

## The reliability and isolation suite alone, at full size (README: Reliability and security).
reliability: export VCSYNC_SUITE_SIZE = full
reliability: install binaries
	$(call run_pytest,tests/chaos tests/security)

unit: install
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
