# Two commands for a fresh machine: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
DEMO_OUT := demo-out

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamps re-run the install only when pyproject.toml changes.
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(VENV)/.demo: pyproject.toml | $(BIN)/python
	$(PIP) install -e ".[demo]"
	touch $@ $(VENV)/.runtime

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(PIP) install -e ".[dev]"
	touch $@ $(VENV)/.demo $(VENV)/.runtime

demo: $(VENV)/.demo
	$(BIN)/edgekit demo --out $(DEMO_OUT)

test: $(VENV)/.dev
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
