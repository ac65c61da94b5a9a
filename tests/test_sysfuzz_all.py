"""The whole-table system-call fuzzer (fixtures/c/sysfuzz_all.c, issue 16): short seeded
runs of every number of NetBSD's table (and beyond it) with bad pointers, fds, paths,
sizes and flags, under `--root` in a scratch folder.  The kernel must answer each with
an errno or a result: no exit 70, no Python traceback, no hang.  `make fuzz` runs
the long version (bench/fuzz_run.py)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from bench import fuzz_run, fuzz_table
from fixtures.build import C_SRC_DIR, build_c
from nbemu.syscalls.syscalls_master import SYSCALLS
from tests.guest import run_nbemu

NCALLS = 4000


def _fuzz(tmp_path: Path, arch: str, seed: int, deterministic: bool,
          lwps: int = 1) -> fuzz_run.Run:
    scratch = tmp_path / "root"
    scratch.mkdir()
    opts = ["--ncpu", "2", "--root", str(scratch)]
    if deterministic:
        opts += ["--deterministic", "--seed", str(seed)]
    r = run_nbemu(build_c("sysfuzz_all", arch), str(seed), str(NCALLS), str(lwps),
                  opts=tuple(opts),
                  timeout=120, stdin=subprocess.DEVNULL)
    replay = f"replay: nbemu {' '.join(opts)} sysfuzz_all {seed} {NCALLS} {lwps} (arch {arch})"
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, \
        f"{r.stderr[-3000:]}\n{replay}"
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}\n{replay}"
    run = fuzz_run.Run(seed, arch, deterministic, lwps, rc=r.returncode)
    fuzz_run.parse(run, r.stdout, r.stderr)
    assert not run.problem, f"{run.problem}\n{replay}"
    assert r.stdout.rstrip().endswith("END"), r.stdout[-2000:]
    assert run.calls == NCALLS if lwps == 1 else run.calls >= NCALLS, r.stdout[-2000:]
    return run


@pytest.mark.parametrize("arch,seed,deterministic,lwps", [
    ("x86_64", 11, True, 1), ("x86_64", 12, False, 1), ("aarch64", 13, True, 1),
    ("x86_64", 14, True, 3)])
def test_short_seeded_run(tmp_path: Path, arch: str, seed: int, deterministic: bool,
                          lwps: int) -> None:
    """Several LWPs (the last case): calls race with each other and with main's
    refresh of the pools (close during read, munmap of the arena, ...)."""
    run = _fuzz(tmp_path, arch, seed, deterministic, lwps)
    table = {n for n in run.called if n in SYSCALLS}
    # 4,000 draws over 507 slots reach nearly all of them; a few are never run
    # (exit, exec, reboot, ...): see fix() in the fixture.
    assert len(table) >= 450, sorted(set(SYSCALLS) - table)
    assert len(run.called) - len(table) >= 100          # numbers beyond the table
    assert run.errnos[0] > 0 and run.errnos[14] > 0     # successes and EFAULTs
    assert run.executed + run.skipped == run.calls


def test_same_seed_same_calls(tmp_path: Path) -> None:
    """--deterministic with one seed: the same figures twice (a finding replays)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _fuzz(tmp_path / "a", "x86_64", 21, True)
    b = _fuzz(tmp_path / "b", "x86_64", 21, True)
    assert (a.executed, a.errnos, a.called) == (b.executed, b.errnos, b.called)


def test_embedded_table_matches_syscalls_master() -> None:
    src = (C_SRC_DIR / "sysfuzz_all.c").read_text()
    m = re.search(r"/\* BEGIN TABLE[^\n]*\n(.*?)/\* END TABLE \*/", src, re.S)
    assert m, "markers missing"
    assert m.group(1) == fuzz_table.c_table(), "regenerate: python -m bench.fuzz_table"


def test_fuzzing_section_keeps_the_rest(tmp_path: Path) -> None:
    md = tmp_path / "B.md"
    md.write_text("# nbemu benchmarks\n\nrows\n\n## Fuzzing\n\nold\n\n## Other\n\nkept\n")
    fuzz_run.write_section(md, "## Fuzzing\n\nnew\n")
    assert md.read_text() == "# nbemu benchmarks\n\nrows\n\n## Fuzzing\n\nnew\n\n## Other\n\nkept\n"
    md.write_text("# nbemu benchmarks\n\nrows\n")
    fuzz_run.write_section(md, "## Fuzzing\n\nnew\n")
    assert md.read_text() == "# nbemu benchmarks\n\nrows\n\n## Fuzzing\n\nnew\n"


def test_outcomes_are_classified() -> None:
    run = fuzz_run.Run(1, "x86_64", True, rc=70)
    fuzz_run.parse(run, "", "Traceback (most recent call last):\n  boom\n")
    assert run.problem.startswith("kernel crash") and run.tracebacks == 1
    run = fuzz_run.Run(1, "x86_64", True, rc=3)
    fuzz_run.parse(run, "HANG call=5 n=3 args=0 0 0 0 0 0\n", "")
    assert run.problem.startswith("hang")
    run = fuzz_run.Run(1, "x86_64", True, rc=None)
    fuzz_run.parse(run, "", "")
    assert "host hang" in run.problem
    run = fuzz_run.Run(1, "x86_64", True, rc=0)
    fuzz_run.parse(run, "SYSFUZZ seed=1 calls=9 executed=9 skipped=0 distinct=1 table=1 "
                   "beyond=0 interrupts=0 hangs=0 lwps=2 stuck=1\nEND\n", "")
    assert run.problem.startswith("hang")
