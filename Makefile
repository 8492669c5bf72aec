# greenserve developer commands. Everything runs inside .venv, built from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit unit-compiled unit-py312 compiled bench docs clean autobahn autobahn-env

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

$(VENV)/.bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $(VENV)/.bench

## make run: serve the built-in demo app on http://127.0.0.1:8000
run: $(STAMP)
	$(BIN)/greenserve --access-logfile - -b 127.0.0.1:8000 greenserve.demo:app

## make test: the whole suite (lint, types, tests), as CI runs it: the tests run twice, on
## the checkout (pure Python), then with the request path compiled by mypyc (unit-compiled)
test: $(STAMP) lint typecheck unit unit-compiled unit-py312

# TESTS: the test files to run (all when empty; unit-py312's compiled run names the bridge's)
TESTS ?=
unit: $(STAMP) autobahn-env
	$(BIN)/python tools/build_compiled.py --clean
	$(BIN)/python -m pytest -q $(TESTS)

## make compiled: build/compiled, this checkout with its request path compiled by mypyc
## (what GREENSERVE_COMPILE=1 pip install installs; needs a C compiler, ~15 s)
compiled: $(STAMP)
	$(BIN)/python tools/build_compiled.py build/compiled

# The suite again with the C extensions beside the checkout's modules, so every process the
# tests start runs them (tests/test_build.py fails if not); removed afterwards, pass or fail.
unit-compiled: $(STAMP) autobahn-env
	$(BIN)/python tools/build_compiled.py --in-place
	GREENSERVE_EXPECT_COMPILED=1 $(BIN)/python -m pytest -q -p no:cacheprovider $(TESTS); \
		status=$$?; $(BIN)/python tools/build_compiled.py --clean; exit $$status

# $(call find_python,X.Y): pythonX.Y on PATH, else pyenv's newest X.Y, as a full path;
# empty when there is neither (PY312 and PY27 below).
find_python = $(shell p=$$(python$(1) -c 'import sys; print(sys.executable)' 2>/dev/null); \
	if [ -z "$$p" ]; then v=$$(pyenv versions --bare 2>/dev/null | grep '^$(subst .,\.,$(1))\.' | tail -1); \
	[ -n "$$v" ] && p="$$(pyenv root)/versions/$$v/bin/python$(1)"; fi; echo "$$p")

# The ASGI bridge starts tasks with the stdlib's eager start on CPython 3.12+ and with its
# own on 3.11: the whole suite again on 3.12, pure, then the bridge's tests compiled (unit
# and unit-compiled in a venv of its own). Skipped, and said so, when there is no python3.12.
PY312 ?= $(call find_python,3.12)
VENV312 := .venv-py312
BRIDGE_TESTS := tests/test_asgi_http.py tests/test_asgi_bridge.py tests/test_loophook.py \
	tests/test_asgi_frameworks.py tests/test_asgi_lifespan.py tests/test_mount.py tests/test_build.py
unit-py312:
	@if ! $(PY312) -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then \
		echo "No Python 3.12 ($(PY312)): the 3.12 run is skipped"; \
	else $(MAKE) -s VENV=$(VENV312) PYTHON=$(PY312) unit \
		&& $(MAKE) -s VENV=$(VENV312) PYTHON=$(PY312) TESTS="$(BRIDGE_TESTS)" unit-compiled; fi

# wstest for the Autobahn core cases in unit (about 10 s to install, once). Without Python 2.7
# the Autobahn tests skip, and say so; a failed install does not stop the suite.
autobahn-env:
	@if [ -x .venv-autobahn/bin/wstest ]; then :; \
	elif [ -z "$(PYTHON2)$(PY27)" ]; then echo "No Python 2.7: the Autobahn tests will skip"; \
	else $(MAKE) -s .venv-autobahn/bin/wstest || { rm -rf .venv-autobahn; \
		echo "Could not install wstest: the Autobahn tests will skip"; }; fi

lint: $(STAMP)
	$(BIN)/ruff check greenserve tests tools setup.py _build $(wildcard loadtests)
	$(BIN)/python tools/check_sizes.py

typecheck: $(STAMP)
	$(BIN)/mypy

## make bench: greenserve and its peers (gunicorn -k gevent, gevent pywsgi, waitress, uvicorn,
## granian; for ASGI uvicorn and gunicorn -k asgi), same apps, one worker each, with ratios
## (~25 min; not part of test). Options through BENCH_ARGS, e.g. BENCH_ARGS=--quick (~5 min)
## or BENCH_ARGS="--only greenserve,gunicorn,10k-c64"; see loadtests/README.md.
bench: $(VENV)/.bench
	$(BIN)/python loadtests/bench.py $(BENCH_ARGS)

## make autobahn: every Autobahn|Testsuite case against the WSGI echo, then the ASGI echo,
## printing the verdict counts per case category for each (~15 min each; not part of test,
## which runs the fast core cases against both when wstest exists). The suite needs Python
## 2.7 with virtualenv<20.22: PYTHON2 names it (e.g. PYTHON2="env PYENV_VERSION=2.7.18 python2.7").
# Found by itself when it can (PY27, below); PYTHON2 is PY27 when that imports virtualenv.
PYTHON2 ?= $(shell "$(PY27)" -c 'import virtualenv' >/dev/null 2>&1 && echo "$(PY27)")
# Else PY27 alone, a 2.7 without virtualenv: a Python 3 virtualenv<20.22 (the last that
# makes 2.7 environments), in .venv-virtualenv, makes the environment from it.
PY27 ?= $(call find_python,2.7)
.venv-autobahn/bin/wstest:
	if [ -n "$(PYTHON2)" ]; then $(PYTHON2) -m virtualenv -q .venv-autobahn; \
	else $(PYTHON) -m venv .venv-virtualenv \
		&& .venv-virtualenv/bin/python -m pip install -q 'virtualenv<20.22' \
		&& .venv-virtualenv/bin/virtualenv -q -p "$(PY27)" .venv-autobahn; fi
	.venv-autobahn/bin/pip install -q --disable-pip-version-check --no-python-version-warning autobahntestsuite
autobahn: $(STAMP) .venv-autobahn/bin/wstest
	AUTOBAHN_CASES=all $(BIN)/python -m pytest -q -s tests/test_websocket_autobahn.py

docs: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[docs]'
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) $(VENV312) .venv-virtualenv build *.egg-info site
	find greenserve -name "*.so" -delete
