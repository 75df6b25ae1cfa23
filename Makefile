# infra-mgr: the two commands are `make demo` and `make test`; each does all of its own set-up.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup system venv web demo test lint bench clean

setup: system venv web

system:
	@bash scripts/setup-system.sh

$(PY):
	/usr/bin/python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund --loglevel=error

web: web/node_modules/.package-lock.json

demo: setup
	$(VENV)/bin/infra-mgr demo

test: setup
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check infra_mgr tests bench

bench: setup
	$(PY) bench/api_interfaces.py

clean:
	-$(VENV)/bin/infra-mgr lab down
	rm -rf var test-artifacts
