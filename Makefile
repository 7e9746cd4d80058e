# Two commands for a newcomer: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test system-packages bench clean generate

# `make demo ARGS='--web.listen-address :9999'` passes flags to the demo command.
ARGS ?=

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# The FinOps Foundation's focus-validator checks `report --format focus` in the tests. It pins
# old pandas/pandera (and multimethod<1.11, which 1.0.0 forgets to pin), so it gets a venv of its own.
FOCUS_VENV ?= .venv-focus
$(FOCUS_VENV)/bin/.installed:
	$(PYTHON) -m venv $(FOCUS_VENV)
	$(FOCUS_VENV)/bin/python -m pip install --quiet 'focus-validator==1.0.0' 'multimethod<1.11'
	touch $@

demo: $(BIN)/.installed  ## run the exporter against the bundled simulator (no API keys)
	$(BIN)/ai-cost-exporter demo $(ARGS)

system-packages:  ## the Debian packages the tests run (installed as root, else the apt-get line)
	@bash scripts/system-packages.sh

test: $(BIN)/.installed $(FOCUS_VENV)/bin/.installed system-packages  ## install what is missing, lint, type-check, run every test
	$(BIN)/ruff check exporter tests bench scripts
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: $(BIN)/.installed  ## print performance figures
	$(BIN)/python bench/run.py

generate: $(BIN)/.installed  ## regenerate deploy/kubernetes/operator/ from the rules and dashboards
	$(BIN)/python scripts/generate_kubernetes.py

clean:
	rm -rf $(VENV) $(FOCUS_VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
