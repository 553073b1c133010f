# Garrison: `make run` starts everything on the embedded default; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch goes in first and pinned: an open range would pull a multi-GB CUDA build.
TORCH_SPEC := torch==2.13.0
PIP := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: run install migrate seed test lint bench bench-service clean-var

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.torch: | $(BIN)/python
	$(PIP) install $(TORCH_SPEC)
	touch $@

# setup.py builds the extraction detector's C kernels (optional: without a compiler, numpy does the same work).
BUILD_INPUTS := pyproject.toml setup.py evaluations/engine/extraction/_kernels.c

$(VENV)/.installed: $(BUILD_INPUTS) $(VENV)/.torch
	scripts/system-packages.sh build
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-test: $(BUILD_INPUTS) $(VENV)/.torch
	scripts/system-packages.sh build
	$(PIP) install -e '.[test]'
	touch $@

$(VENV)/.installed-bench: $(BUILD_INPUTS) $(VENV)/.torch
	scripts/system-packages.sh build
	$(PIP) install $(TORCH_SPEC) -e '.[bench]'
	touch $@

install: $(VENV)/.installed
	scripts/system-packages.sh run

migrate: install
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py migrate --noinput

seed: migrate
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py seed_demo

# Web on http://127.0.0.1:8000, a Celery worker and Celery beat; Ctrl-C stops all three.
run: seed
	DEBUG=$${DEBUG:-1} PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho -f Procfile start

test: $(VENV)/.installed-test
	scripts/system-packages.sh test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

# Engine benchmarks side by side with ART, torchattacks and modelscan (docs/benchmarks.md).
bench: $(VENV)/.installed-bench
	$(BIN)/python -m benchmarks

# Service benchmarks: dashboards and gate under load, audit PDFs, Celery runs (docs/benchmarks-service.md).
# They need the local PostgreSQL and Redis.
bench-service: $(VENV)/.installed-bench
	scripts/system-packages.sh bench
	$(BIN)/python -m benchmarks.service_dashboards
	$(BIN)/python -m benchmarks.service_pdfs
	$(BIN)/python -m benchmarks.service_runs
	$(BIN)/python -m benchmarks.service_serving

clean-var:
	rm -rf var/
