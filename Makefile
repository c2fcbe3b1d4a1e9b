# Two entry points: `make demo` and `make test`. Everything installs into .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= runs/demo
DEMO_CATALOG ?= runs/demo_catalog.jsonl
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo test test-slow serve clean bench

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch==2.13.0 is the CPU build; where the machine keeps its wheel in /opt/wheels, pip takes it from there.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(FIND_LINKS) -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/itemtower generate --n 3000 --seed 0 --out $(DEMO_CATALOG)
	$(BIN)/itemtower train --catalog $(DEMO_CATALOG) --out $(DEMO_DIR) --fast
	$(BIN)/itemtower index --model $(DEMO_DIR) --catalog $(DEMO_CATALOG)
	@echo ""
	@echo "catalog: $(DEMO_CATALOG)   model: $(DEMO_DIR)   index: $(DEMO_DIR)/index"
	@echo "the page: http://$(HOST):$(PORT)/   Swagger UI: http://$(HOST):$(PORT)/docs   (stop the service with Ctrl+C)"
	ITEMTOWER_MODEL=$(DEMO_DIR) $(BIN)/uvicorn main:app --host $(HOST) --port $(PORT)

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

# Serve an already trained model (make demo trains one): ITEMTOWER_MODEL=$(DEMO_DIR).
serve: install
	ITEMTOWER_MODEL=$(DEMO_DIR) $(BIN)/uvicorn main:app --host $(HOST) --port $(PORT)

# The quality benchmark (needs ../shared/data); other benchmarks: see BENCHMARKS.md for each command.
bench: install
	$(BIN)/pip install --quiet $(FIND_LINKS) -e '.[test,bench]'
	$(BIN)/python benchmarks/quality.py --catalog myntra --minutes 8 --out runs/bench/myntra

clean:
	rm -rf runs .pytest_cache
