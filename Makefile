# One way to run things: the same targets locally and in CI.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench bench-pytest clean

$(STAMP): pyproject.toml setup.py $(wildcard core/*.pyx core/*.pxd sim/*.pyx)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/paymember simulate scenarios/weekday_city.toml

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/paymember bench engine

bench-pytest: $(STAMP)
	$(BIN)/python -m pytest -q -m benchmark --benchmark-enable

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
