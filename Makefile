# Two commands from a fresh clone: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
# Put the venv first on PATH: MLflow's scoring server execs `uvicorn` by name and papermill/nbval
# start kernels with the venv's python.
export PATH := $(abspath $(BIN)):$(PATH)
STAMP  := $(VENV)/.mlkit-installed

.PHONY: install demo test test-fast lint bench gpu-check clean help

help:
	@echo "make demo   - create .venv, install mlkit, run the main job (mlkit demo)"
	@echo "make test   - create .venv, install mlkit, run pytest + nbval over tutorials/ and notebooks/"
	@echo "make lint   - ruff"
	@echo "make bench  - run every benchmarks/bench_*.py (one JSON line each)"

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[all,dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (mlkit)" >/dev/null
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/mlkit demo

# pytest runs the unit and integration tests, then nbval executes every tutorial and notebook
# in a real kernel and compares outputs (sanitised by tests/nbval_sanitize.cfg).
test: $(STAMP)
	$(PY) -m pytest -p no:cacheprovider tests
	$(PY) -m pytest -p no:cacheprovider --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg \
		--nbval-cell-timeout=600 tutorials notebooks

test-fast: $(STAMP)
	$(PY) -m pytest -p no:cacheprovider -x -q tests

lint: $(STAMP)
	$(BIN)/ruff check mlkit tests benchmarks

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

gpu-check: $(STAMP)
	$(PY) benchmarks/gpu_check.py

clean:
	rm -rf $(VENV) .mlkit .pytest_cache
