# embedbench: `make eval` and `make test` work first on a fresh clone (they run setup when .venv is missing).
PYTHON ?= python3
VENV := .venv
PIP := $(VENV)/bin/pip install -c constraints.txt
EB := $(VENV)/bin/embedbench

MODEL ?= minilm-l6
SUITE ?= default
PRECISION ?= fp32,int8,binary
DIMS ?=
RESULTS ?= results
SHARED_DATA := $(abspath ../shared/data)
export EMBEDBENCH_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),)

# `make eval && make gate`: the fresh run of MODEL in RESULTS against the committed baseline (the
# candidate folder holds results/baselines, which the gate leaves to the baseline side).
BASELINE ?= results:results/baselines
CANDIDATE ?= results:$(RESULTS),model=$(MODEL)
GATE_PLAN ?=

.PHONY: setup eval report gate lint test bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e ".[test,ray]"
	$(VENV)/bin/python -m embedbench.data.bfcl
	touch $@

setup: $(VENV)/.installed

eval: setup
ifdef PLAN
	$(EB) eval --plan $(PLAN) --results-dir $(RESULTS)
else
	$(EB) eval --model $(MODEL) --suite $(SUITE) --precision $(PRECISION) --results-dir $(RESULTS) \
		$(if $(DIMS),--dims $(DIMS),)
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
