# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv if needed.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STAGE ?= dev

.PHONY: demo check test up status lint format clean venv bench-validation bench-predict bench-batch bench-adversarial bench-drift bench-monitoring bench-rollout bench-uploads scan-venv scan package deploy postdeploy cost destroy

$(STAMP): requirements.txt requirements-dev.txt jobs/requirements.txt pyproject.toml scripts/find-python.sh
	@py=$$(scripts/find-python.sh) || exit 1; \
	if [ ! -x $(BIN)/python ] || ! $(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then \
	  echo "creating $(VENV) with $$py"; rm -rf $(VENV); "$$py" -m venv $(VENV) || exit 1; \
	fi
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip<26.3"  # chalice 1.34 packages with pip < 26.3
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

# checkov and parliament live in their own venv: checkov pins an old boto3.
SCAN_VENV := .venv-scan
SCAN_STAMP := $(SCAN_VENV)/.installed
$(SCAN_STAMP): requirements-scan.txt scripts/find-python.sh
	@py=$$(scripts/find-python.sh) || exit 1; rm -rf $(SCAN_VENV); "$$py" -m venv $(SCAN_VENV) || exit 1
	$(SCAN_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-scan.txt
	@touch $(SCAN_STAMP)

scan-venv: $(SCAN_STAMP)

demo: $(STAMP)
	$(BIN)/mlops demo

# The suite has one folder per layer (tests/__init__.py). The layers without local clouds run in random
# order (pytest-randomly prints its seed; `make check PYTEST_ARGS=--randomly-seed=N` repeats an order).
# The others keep file order: a module's tests share its module-scoped local cloud in turn.
RANDOM_LAYERS := tests/unit tests/service tests/adapters

# The inner loop, under a minute: lint, then the unit and service layers in random order.
check: lint
	$(BIN)/python -m pytest -p randomly tests/unit tests/service $(PYTEST_ARGS)

# Everything, in two runs (the second lists its 25 slowest tests: where the suite's time goes). pytest exits 5 when it collected nothing: that is a failure, not a pass
# (when PYTEST_ARGS narrows the selection, one of the two runs may select nothing, but not both).
# Then the policy mutation test over every call the suite's local clouds made under enforced IAM
# (`mlops iam-report`: a refused call fails the run; statements no recorded call needs are listed).
# First, Chromium and its driver for the console's browser tests, installed with apt when missing.
test: $(STAMP) $(SCAN_STAMP) lint
	@scripts/ensure-chromium.sh  # the console's browser tests: Debian's chromium and chromium-driver
	@rm -rf build/iam; \
	$(BIN)/python -m pytest -p randomly $(RANDOM_LAYERS) $(PYTEST_ARGS); first=$$?; \
	if [ $$first -ne 0 ] && [ $$first -ne 5 ]; then exit $$first; fi; \
	$(BIN)/python -m pytest -p no:randomly --durations=25 tests $(addprefix --ignore=,$(RANDOM_LAYERS)) $(PYTEST_ARGS); second=$$?; \
	if [ $$second -ne 0 ] && [ $$second -ne 5 ]; then exit $$second; fi; \
	narrowed=$(if $(strip $(PYTEST_ARGS)),yes,); \
	if [ $$first -eq 5 ] && [ $$second -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; \
	if [ -z "$$narrowed" ] && [ $$first -eq 5 ]; then echo "pytest collected no tests in $(RANDOM_LAYERS)" >&2; exit 1; fi; \
	if [ -z "$$narrowed" ] && [ $$second -eq 5 ]; then echo "pytest collected no tests in the other layers" >&2; exit 1; fi; \
	if [ -z "$$narrowed" ]; then mkdir -p build/iam; $(BIN)/mlops iam-report > build/iam/report.txt; iam=$$?; \
	  grep -E "^(REFUSED|UNUSED)" build/iam/report.txt; tail -n 1 build/iam/report.txt; exit $$iam; fi

# The layers (pyproject.toml's import-linter contracts; docs/ARCHITECTURE.md draws them) and types over
# all code. lint-imports reads the packages from scripts/ as the CLI is installed.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	PYTHONPATH=.:scripts $(BIN)/lint-imports --no-cache

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

# Batch scoring: a worker end to end against its stages, 2 workers against 1, memory by shard size.
# BATCH_BENCH_ARGS=--quick: under a minute. Figures in docs/BENCHMARKS.md.
BATCH_BENCH_ARGS ?=
bench-batch: $(STAMP)
	$(BIN)/python benchmarks/batch_bench.py $(BATCH_BENCH_ARGS)

# Adversarial uploads (issue 13): the validator's peak RSS and /tmp for each kind of hostile content
# at 1x and 4x size, each case in its own process. ADVERSARIAL_BENCH_ARGS=--quick: under a minute.
ADVERSARIAL_BENCH_ARGS ?=
bench-adversarial: $(STAMP)
	$(BIN)/python benchmarks/adversarial_bench.py $(ADVERSARIAL_BENCH_ARGS)

# Drift verdicts: false alarms and detection by scenario and upload size, on bundled and generated
# tables. DRIFT_BENCH_ARGS=--quick: under a minute. Figures in docs/BENCHMARKS.md.
DRIFT_BENCH_ARGS ?=
bench-drift: $(STAMP)
	$(BIN)/python benchmarks/drift_bench.py $(DRIFT_BENCH_ARGS)

# Monitoring replay: false alarms over stable windows, detection delay of a 0.5-SD shift, accuracy
# drops on outcomes, cost per million predictions. MONITORING_BENCH_ARGS=--quick: under a minute.
MONITORING_BENCH_ARGS ?=
bench-monitoring: $(STAMP)
	$(BIN)/python benchmarks/monitoring_bench.py $(MONITORING_BENCH_ARGS)

# Rollout replay: canaries of deliberately bad and of good releases through the real predictor, capture
# and guards; share served before an abort, windows to abort, failed requests. ROLLOUT_BENCH_ARGS=--quick: < 1 minute.
ROLLOUT_BENCH_ARGS ?=
bench-rollout: $(STAMP)
	$(BIN)/python benchmarks/rollout_bench.py $(ROLLOUT_BENCH_ARGS)

# Upload burst: 200 small CSVs put as fast as a client can against `mlops up`; time until all are in the
# uploads ledger, event-to-ledger latency. UPLOAD_BENCH_ARGS=--quick (50 uploads): under a minute.
UPLOAD_BENCH_ARGS ?=
bench-uploads: $(STAMP)
	$(BIN)/python benchmarks/upload_bench.py $(UPLOAD_BENCH_ARGS)

# Deploy into your AWS account (README, "Deploy"): data plane, chalice deploy, post-deploy step,
# monitoring, smoke check. DEPLOY_ARGS="--build-image" also builds and pushes the job image.
deploy: $(STAMP)
	$(BIN)/python -m mlops.deploy --stage $(STAGE) $(DEPLOY_ARGS)

# Remove a deployed stage but its data (key, buckets, tables are retained), and list what was kept.
destroy: $(STAMP)
	$(BIN)/python -m mlops.destroy --stage $(STAGE)

# What a deployed stage costs per month before any traffic, from its templates (list prices), for
# each cost profile. COST_PROFILE=standard|dev overrides the stage's profile (here and in deploy).
cost: $(STAMP)
	$(BIN)/python -m mlops.cost --stage $(STAGE)

postdeploy: $(STAMP)
	$(BIN)/python -m mlops.postdeploy --stage $(STAGE)

# chalice package --merge-template: SAM template + deployment.zip in build/package/$(STAGE)/.
package: $(STAMP)
	$(BIN)/python -m mlops.policies --check
	$(BIN)/python -m mlops.package --stage $(STAGE)

# The security scans alone (they also run inside `make test`): cfn-lint, checkov, parliament.
scan: $(STAMP) $(SCAN_STAMP)
	$(BIN)/python -m pytest tests/deploy/test_scans.py -q

# Predict benchmark: route vs minimal handler vs scikit-learn, cold starts. PREDICT_BENCH_ARGS=--quick: < 1 minute.
bench-predict: $(STAMP)
	$(BIN)/python benchmarks/predict_bench.py $(PREDICT_BENCH_ARGS)

clean:
	rm -rf $(VENV) $(SCAN_VENV) build .pytest_cache .mypy_cache .ruff_cache
