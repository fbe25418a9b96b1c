# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make train   - virtual environment, install, fetch MNIST, train with the defaults
#   make test    - virtual environment, install, run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install train test bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(BIN)/digitnet download
	$(BIN)/digitnet train

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python scripts/bench_train.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache report-*
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
