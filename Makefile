# infra-mgr: the two commands are `make demo` and `make test`; each does all of its own set-up.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup system venv web demo test lint bench clean lock

setup: system venv web

system:
	@bash scripts/setup-system.sh

$(PY):
	/usr/bin/python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Installs are reproducible: exact versions come from requirements.lock (refresh with `make lock`
# after changing the dependencies in pyproject.toml); the project itself is installed editable on top.
$(STAMP): pyproject.toml requirements.lock | $(PY)
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund --loglevel=error

web: web/node_modules/.package-lock.json

demo: setup
	$(VENV)/bin/infra-mgr demo

test: setup
	$(PY) -m pytest -q

# Style, the layers (import contracts in pyproject.toml) and types.
lint: venv
	$(VENV)/bin/ruff check infra_mgr tests bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

# Every benchmark, one after the other (they share the machine's cores, so never in parallel). Each
# writes bench/results/<bench>-<date>.txt; the root-only ones (network namespaces, upsd) say so and
# fail when not run as root. `make bench BENCH_ARGS=--smoke` runs them all at tiny sizes.
BENCHES := api_concurrency api_interfaces city_discovery city_scale config_backup conformance link_audit power_detect snmp_sweep
bench: setup
	@status=0; for b in $(BENCHES); do \
	  echo "== bench/$$b.py $(BENCH_ARGS)"; \
	  $(PY) bench/$$b.py $(BENCH_ARGS) || { echo "bench/$$b.py failed"; status=1; }; \
	done; exit $$status

# Resolve pyproject.toml's ranges afresh in a throw-away venv and pin the result.
lock:
	rm -rf .lock-venv && /usr/bin/python3 -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip
	.lock-venv/bin/python -m pip install -q '.[dev]'
	{ echo "# Exact versions of every dependency (pyproject.toml [dev] extra); made by \`make lock\`."; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^infra-mgr'; } > requirements.lock
	rm -rf .lock-venv build

clean:
	-$(VENV)/bin/infra-mgr lab down
	rm -rf var test-artifacts
