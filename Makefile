# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make train   - virtual environment, install, fetch MNIST, train the textbook network into model.npz
#   make test    - virtual environment, install, run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Extra options for `make train`, e.g. make train TRAIN_ARGS="--force --epochs 10"
TRAIN_ARGS ?=

.PHONY: install train report test bench bench-recipes bench-record bench-predict bench-load-image bench-download bench-serve bench-serve-training bench-classroom bench-sweep fuzz fuzz-api clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(BIN)/digitnet download
	$(BIN)/digitnet train $(TRAIN_ARGS)

# Pictures and an HTML page for model.npz, in report-model/
report: $(STAMP)
	$(BIN)/digitnet report model.npz

test: $(STAMP)
	$(BIN)/python -m pytest

# Speed, memory and accuracy of the default run (the core issue's bars).
bench: $(STAMP)
	$(BIN)/python scripts/bench_train.py

# The documented recipes beyond the textbook, end to end (several minutes).
bench-recipes: $(STAMP)
	$(BIN)/python scripts/bench_recipes.py

bench-predict: $(STAMP)
	$(BIN)/python scripts/bench_predict.py

# `digitnet download` past a mirror that stalls forever after its headers (issue 10's 45 s bar).
bench-download: $(STAMP)
	$(BIN)/python scripts/bench_download.py

# Latency, throughput and memory of `digitnet serve` (model.npz)
bench-serve: $(STAMP)
	$(BIN)/python scripts/bench_serve.py

# The same while the server trains a network from the page (the training issue's bars)
bench-serve-training: $(STAMP)
	$(BIN)/python scripts/bench_serve.py --while-training

# The sweep's bars: 24 trials on real MNIST, pruned vs not, --jobs 2 vs 1 (about 15 minutes).
bench-sweep: $(STAMP)
	$(BIN)/python scripts/bench_sweep.py

# 40 browsers, 300 idle sockets and 20 slow clients against one `digitnet serve` for 2 minutes (docs/serve.md).
bench-classroom: $(STAMP)
	$(BIN)/python scripts/bench_classroom.py

# The record recipe and the old 99% recipe over seeds 0, 1, 2, and their table (about an hour; docs/results.md).
bench-record: $(STAMP)
	$(BIN)/python scripts/bench_record.py

# load_image on a photo, a canvas and a folder of PNGs (docs/predict.md).
bench-load-image: $(STAMP)
	$(BIN)/python scripts/bench_load_image.py

# Each fuzz harness (tests/fuzz/fuzz_*.py) in turn, coverage-guided with atheris, FUZZ_MINUTES each.
# Findings go to tests/fuzz/findings/NAME/ (git-ignored); exit 1 if any (docs/fuzzing.md).
FUZZ_MINUTES ?= 10
fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzz.runner all --minutes $(FUZZ_MINUTES)

# schemathesis against a live `digitnet serve`: FUZZ_API_EXAMPLES per route (docs/serve.md).
FUZZ_API_EXAMPLES ?= 1000
fuzz-api: $(STAMP)
	$(BIN)/python scripts/fuzz_api.py --examples $(FUZZ_API_EXAMPLES)

# Removes what make and the tests build (and the reports, which `make report` redraws); keeps your work.
clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache report-*
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	@kept=$$(ls -dp *.npz runs sweep-* 2>/dev/null | tr '\n' ' '); \
	if ls data/*.gz >/dev/null 2>&1; then kept="$${kept}data/ "; fi; \
	if [ -n "$$kept" ]; then echo "kept: $${kept}(your models, runs, sweeps and MNIST: remove them by hand)"; fi
