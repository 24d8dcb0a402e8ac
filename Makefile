# Two commands on a fresh machine:  `make run` (the pipeline) and `make test` (the tests).
# `make docs` serves the documentation site.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# Pinned torch wheels: the ones this project is tested with (they lie on the CI disk).
TORCH   := torch==2.14.1 torchvision==0.29.1

.PHONY: setup run test bench baseline docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[pipeline,dev]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

test: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -x --durations=15 -n logical --dist loadfile --no-loadscope-reorder

# After `make run`: commit dvc.lock and the small results (metrics, evaluation JSONs, the
# report; DVC's own .gitignore files keep models, shards and checkpoints out), so that
# `dvc exp run` starts from a baseline and `dvc exp show` / `dvc metrics diff` compare to it.
baseline:
	git add dvc.lock data
	git diff --cached --quiet -- dvc.lock data || git commit -q -m "Baseline: results of make run" -- dvc.lock data

# The documentation site at http://127.0.0.1:8000, rebuilt as you edit docs/ (make test builds
# it in strict mode: tests/test_docs.py).
docs: $(STAMP)
	$(BIN)/mkdocs serve

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_codec.py

clean:
	rm -rf $(VENV)
