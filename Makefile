# embedbench: `make eval` and `make test` work first on a fresh clone (they run setup when .venv is missing).
# `make help` lists the targets and variables.
PYTHON ?= python3
VENV := .venv
PIP := $(VENV)/bin/pip install -c constraints.txt
EB := $(VENV)/bin/embedbench
# The exact versions `make setup` installs (pip-compile's output; `make lock` refreshes it).
LOCK := requirements.lock

MODEL ?= minilm-l6
SUITE ?= default
PRECISION ?= fp32,int8,binary
DIMS ?=
RESULTS ?= results
# Passed to `embedbench eval` (and `make eval PLAN=...`) only when set, e.g.
# DEVICE=cuda DTYPE=bf16 BATCH=64 MAX_LENGTH=512 ARGS="--limit-queries 100".
DEVICE ?=
DTYPE ?=
BATCH ?=
MAX_LENGTH ?=
ARGS ?=
EVAL_FLAGS = $(strip $(if $(DEVICE),--device $(DEVICE)) $(if $(DTYPE),--dtype $(DTYPE)) \
	$(if $(BATCH),--batch-size $(BATCH)) $(if $(MAX_LENGTH),--max-length $(MAX_LENGTH)) $(ARGS))
SHARED_DATA := $(abspath ../shared/data)
export EMBEDBENCH_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),)

# `make eval && make gate`: the fresh run of MODEL in RESULTS against the committed baseline (the
# candidate folder holds results/baselines, which the gate leaves to the baseline side).
BASELINE ?= results:results/baselines
CANDIDATE ?= results:$(RESULTS),model=$(MODEL)
GATE_PLAN ?=

# More pip-compile options for `make lock`, e.g. LOCK_ARGS=--upgrade (every pin to its newest fitting
# version) or LOCK_ARGS="--upgrade-package transformers"; without them the lock's pins stay where they fit.
LOCK_ARGS ?=

.PHONY: help setup lock eval report gate lint test bench clean
.DEFAULT_GOAL := setup

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# The locked versions (torch is the 2.13.0+cpu build there), then the package itself without resolving
# again, built by the locked setuptools (no build isolation: nothing unpinned is fetched).
$(VENV)/.installed: pyproject.toml constraints.txt $(LOCK) | $(VENV)/bin/python
	$(PIP) -r $(LOCK)
	$(PIP) --no-deps --no-build-isolation -e .
	$(VENV)/bin/python -m embedbench.data.bfcl
	touch $@

setup: $(VENV)/.installed

# Re-resolve the lock from pyproject.toml (with the test and ray extras) and constraints.txt; needs PyPI.
# It resolves for this venv's Python and platform (3.11, Linux x86_64).
lock: | $(VENV)/bin/python
	$(PIP) pip-tools
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet --extra test --extra ray \
		--constraint constraints.txt --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links \
		--no-emit-trusted-host --output-file $(LOCK) $(LOCK_ARGS) pyproject.toml

eval: setup
ifdef PLAN
	$(EB) eval --plan $(PLAN) --results-dir $(RESULTS) $(EVAL_FLAGS)
else
	$(EB) eval --model $(MODEL) --suite $(SUITE) --precision $(PRECISION) --results-dir $(RESULTS) \
		$(if $(DIMS),--dims $(DIMS),) $(EVAL_FLAGS)
endif

gate: setup
	$(EB) gate --baseline $(BASELINE) --candidate $(CANDIDATE) --results-dir $(RESULTS) $(if $(GATE_PLAN),--eval $(GATE_PLAN),)

report: setup
	$(EB) results --results-dir $(RESULTS) --format table
	$(EB) report --results-dir $(RESULTS) --out reports

# The package's layers and import rules ([tool.importlinter] in pyproject.toml); import-linter comes with
# the test extra. No cache: the graph takes well under a second and a stale cache could hide a new import.
lint: setup
	$(VENV)/bin/lint-imports --no-logo --no-cache

test: lint
	$(VENV)/bin/python -m pytest -q

# Benchmarks side by side (many minutes; never part of CI). BENCH_ARGS e.g. "--only search --repeats 5".
bench: setup
	$(VENV)/bin/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build src/*.egg-info

help:
	@echo "make setup    .venv from $(LOCK) (eval, gate, report, test and bench run it first when needed)"
	@echo "make eval     MODEL=$(MODEL) SUITE=$(SUITE) PRECISION=$(PRECISION) DIMS= RESULTS=$(RESULTS), or PLAN=NAME;"
	@echo "              DEVICE= DTYPE= BATCH= MAX_LENGTH= ARGS=\"...\" pass --device --dtype --batch-size --max-length ..."
	@echo "make gate     BASELINE=$(BASELINE) CANDIDATE=$(CANDIDATE) GATE_PLAN="
	@echo "make report   tables and figures of RESULTS into reports/"
	@echo "make test     make lint (the import layers), then pytest"
	@echo "make lock     refresh $(LOCK) from pyproject.toml and constraints.txt (needs PyPI; LOCK_ARGS=--upgrade)"
	@echo "make bench    benchmarks, many minutes (BENCH_ARGS=\"--only search\")"
	@echo "make clean    remove .venv and build outputs"
