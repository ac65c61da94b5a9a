"""Helpers to run a NetBSD program under nbemu in a subprocess."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The guest architectures every guest suite runs on: C names (fixtures.build.build_c,
# fixtures/c/rt/<arch>/) and the matching GOARCHes (build_go), in the same order.
ARCHES = ["x86_64", "aarch64", "x86", "arm"]
GOARCHES = ["amd64", "arm64", "386", "arm"]
# Suites with a big matrix (ncpu x seed x fixture) run all of it on amd64 and one
# representative cell on the other ports: OTHER_ARCHES / OTHER_GOARCHES.
OTHER_ARCHES = ARCHES[1:]
OTHER_GOARCHES = GOARCHES[1:]


def run_nbemu(prog: Path | str, *args: str, opts: tuple[str, ...] = (), timeout: int = 300,
              env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nbemu.emu.cli", *opts, str(prog), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env,
                          **kw)
