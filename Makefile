# nbemu: two commands do all set-up on a fresh machine.
#   make demo   runs a bundled Go program (built for NetBSD/amd64) on 4 emulated CPUs
#   make test   runs the test suite
# Everything installs into .venv/ and builds into .cache/ (both git-ignored).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: setup
	@prog=$$($(BIN)/python -m fixtures.build go:demo) && \
	  echo "+ nbemu --ncpu 4 --stats $$prog" && \
	  $(BIN)/nbemu --ncpu 4 --stats $$prog

test: setup
	$(BIN)/python -m pytest -n 2 -q

bench: setup
	$(BIN)/python -m bench.run --out BENCHMARKS.md

clean:
	rm -rf .cache
