"""CPU time counted per LWP (issue 14, item 4): CLOCK_THREAD_CPUTIME_ID,
CLOCK_PROCESS_CPUTIME_ID, clock_getcpuclockid2 and getrusage read the work the
kernel charged each LWP for its turns on a vCPU (fixtures/c/cputime.c checks
itself); under --deterministic the figures are the same on every run, and a
recorded run replays them."""
from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.build import build_c
from tests.guest import ARCHES, run_nbemu


def _passes(r) -> str:
    assert "Traceback" not in r.stderr, r.stderr
    assert "FAIL" not in r.stdout, r.stdout
    assert r.stdout.rstrip().endswith("PASS"), (r.stdout, r.stderr)
    assert r.returncode == 0
    return next(line for line in r.stdout.splitlines() if line.startswith("cputime:"))


@pytest.mark.parametrize("arch", ARCHES)
def test_cputime_deterministic_repeats(arch: str) -> None:
    """Virtual time: a sleep costs no CPU time, and two runs read the same figures."""
    prog = build_c("cputime", arch)
    opts = ("--deterministic", "--seed", "3", "--ncpu", "2")
    first = _passes(run_nbemu(prog, "virtual", opts=opts))
    assert _passes(run_nbemu(prog, "virtual", opts=opts)) == first


def test_cputime_fast_mode() -> None:
    _passes(run_nbemu(build_c("cputime", "x86_64"), opts=("--ncpu", "2")))


def test_cputime_replays(tmp_path: Path) -> None:
    """Recorded in fast mode: the replay reads the recorded figures (guest work
    the block hook counted, and system calls; not host time), and the log has
    no record for them."""
    prog = build_c("cputime", "x86_64")
    log = tmp_path / "ct.log"
    rec = _passes(run_nbemu(prog, opts=("--record", str(log), "--ncpu", "2")))
    assert _passes(run_nbemu(prog, opts=("--replay", str(log)))) == rec
