"""Helpers to run a NetBSD program under nbemu in a subprocess."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_nbemu(prog: Path | str, *args: str, opts: tuple[str, ...] = (), timeout: int = 300,
              env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emu.cli", *opts, str(prog), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env,
                          **kw)
