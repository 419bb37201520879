# Two commands from a fresh clone: `make bench` (the default grid and its report) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup bench ladder smoke test test-fast lint speed gpu-check slurm-check report clean

setup: $(STAMP)

# The venv is (re)made when missing or when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# One job per core through Hydra's joblib launcher: each job runs one torch thread (threads=1), which
# keeps every number the same as a sequential run while using all cores.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

bench: setup  ## the default grid on mnist5k -> results/default/report.md (resumes if interrupted; ARGS="seed=1000 name=other")
	$(PY) -m bench sweep=default hydra/launcher=joblib hydra.launcher.n_jobs=$(JOBS) $(ARGS)

ladder: setup  ## the tricks one at a time, pretraining at every rung, two depths -> results/ladder/report.md (56 min on 2 cores)
	$(PY) -m bench sweep=ladder hydra/launcher=joblib hydra.launcher.n_jobs=$(JOBS) $(ARGS)

smoke: setup  ## a few cells in seconds -> results/smoke/report.md
	$(PY) -m bench sweep=smoke

report: setup  ## rewrite results/default/report.md from the cells on disk
	$(PY) -m bench.report results/default

test: setup  ## the whole suite, one pytest worker per core
	$(PY) -m pytest -q -n $(JOBS) --dist loadgroup

test-fast: setup  ## the edit loop: everything but the tests that spawn processes or train many cells
	$(PY) -m pytest -q -n $(JOBS) --dist loadgroup -m "not slow"

lint: setup  ## ruff: the linter and the formatter's check (`.venv/bin/ruff format .` applies it)
	$(VENV)/bin/ruff check bench tests scripts hydra_plugins
	$(VENV)/bin/ruff format --check bench tests scripts hydra_plugins

speed: setup  ## training-loop speed against the machine's peak -> results/speed/ (ARGS="--models default,cnn --profile")
	$(PY) scripts/bench_speed.py $(ARGS)

gpu-check: setup  ## on a GPU machine: smoke sweep on cuda, speed with bf16/compile, full-preset estimate (< 8 min)
	scripts/gpu_check.sh

slurm-check: setup  ## a single-node Slurm on this machine (root, apt): the smoke sweep through it equals a local run, a cancelled sweep resumes (~2.5 min)
	PY=$(PY) scripts/slurm-check.sh

clean:  ## remove results, caches and the venv
	rm -rf results/default results/smoke results/runs results/speed .cache .pytest_cache $(VENV)
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
