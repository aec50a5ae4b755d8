# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv if needed.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STAGE ?= dev

.PHONY: demo test up status lint format clean venv bench-validation

$(STAMP): requirements.txt requirements-dev.txt jobs/requirements.txt pyproject.toml scripts/find-python.sh
	@py=$$(scripts/find-python.sh) || exit 1; \
	if [ ! -x $(BIN)/python ] || ! $(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then \
	  echo "creating $(VENV) with $$py"; rm -rf $(VENV); "$$py" -m venv $(VENV) || exit 1; \
	fi
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/mlops demo

# pytest exits 5 when it collected nothing: that is a failure, not a pass.
test: $(STAMP) lint
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

up: $(STAMP)
	$(BIN)/mlops up

status: $(STAMP)
	$(BIN)/mlops status

# Validation benchmark against pandera (benchmark-only dependencies). BENCH_ARGS=--quick: < 1 minute.
BENCH_ARGS ?= --repeat 3
bench-validation: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r benchmarks/requirements.txt
	$(BIN)/python benchmarks/validation_bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
