"""Benchmarks on NetBSD's own userland (fixtures.netbsd_userland), for `make bench`.

- dynamic hello start-up: the whole process (`python -m emu.cli --root SYSROOT hello`:
  Python, nbemu, the kernel's exec of the program and of /libexec/ld.elf_so, ld.elf_so
  mapping and relocating libc.so.12, main, exit), best of several, beside the same
  program linked statically;
- pthread_create + pthread_join in NetBSD's libpthread.so: per operation, from two run
  sizes (start-up cancels out);
- a mutex/condition-variable ping-pong between two threads in libpthread.so: per
  hand-off, beside the raw ___lwp_park60/_lwp_unpark hop of fixtures/c/bench_pingpong.c;
- with NBEMU_NETBSD_I386=1 (the i386 userland is an opt-in second build): the first two
  on NetBSD/i386.

rows(quick) returns (what, value, reference, goal) tuples; without the NetBSD sources
one row says why there are none.  `python -m bench.netbsd_bench [--quick]` prints them.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from fixtures import netbsd_userland as nu  # noqa: E402

PROGS = REPO / "fixtures" / "netbsd" / "progs"


def _prog(sysroot: Path, name: str, libs: tuple[str, ...], linkage: str,
          arch: str = "amd64") -> Path:
    out = sysroot / "usr" / "tests" / "nbemu" / "bench" / f"{name}.{linkage}"
    stamp = out.parent / f".{out.name}.stamp"
    key = (nu.OUT_ROOT / f".{arch}.stamp").read_text() + (PROGS / f"{name}.c").read_text()
    if not (out.is_file() and stamp.is_file() and stamp.read_text() == key):
        nu.link_program([PROGS / f"{name}.c"], out, arch=arch, libs=libs, sysroot=sysroot,
                        linkage=linkage)
        stamp.write_text(key)
    return out


def _whole_process(prog: Path, sysroot: Path, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nbemu.emu.cli", "--root", str(sysroot), str(prog)],
                       cwd=REPO, capture_output=True, check=True)
        best = min(best, time.perf_counter() - t0)
    return best


def rows(quick: bool = False) -> list[tuple[str, str, str, str]]:
    try:
        nu.netbsd_src()
        nu.check_host_tools()
    except nu.FixtureBuildError as e:
        return [("NetBSD userland rows", "skipped", str(e).splitlines()[0][:80], "")]
    from bench.run import per_op
    from fixtures.build import build_c

    sysroot = nu.build_userland("amd64")
    out = _startup_and_create(sysroot, "amd64", quick)
    root = {"root": str(sysroot)}
    n1, n2 = (300, 3_000) if quick else (1_000, 10_000)
    cv = per_op(_prog(sysroot, "bench_cv_pingpong", ("pthread", "c"), "dynamic"),
                n1, n2, **root) / 2
    hop = per_op(build_c("bench_pingpong"), n1, n2) / 2
    out.append(("mutex/condvar ping-pong (libpthread.so), per hand-off",
                f"{cv * 1e6:.2f} us",
                f"raw park/unpark hop {hop * 1e6:.2f} us: **{cv / hop:.2f}x**",
                "<= 1.5x the hop"))
    if os.environ.get("NBEMU_NETBSD_I386") == "1":
        out += _startup_and_create(nu.build_userland("i386"), "i386", quick)
    return out


def _startup_and_create(sysroot: Path, arch: str,
                        quick: bool) -> list[tuple[str, str, str, str]]:
    """The dynamic hello's start-up and pthread_create + pthread_join rows of one port."""
    from bench.run import per_op

    on = "" if arch == "amd64" else f" on NetBSD/{arch}"
    reps = 3 if quick else 7
    dyn = _whole_process(_prog(sysroot, "hello", ("c",), "dynamic", arch), sysroot, reps)
    sta = _whole_process(_prog(sysroot, "hello", ("c",), "static", arch), sysroot, reps)
    rows = [(f"dynamic hello start-up (ld.elf_so + libc.so.12), whole process{on}",
             f"{dyn * 1e3:.0f} ms", f"static hello {sta * 1e3:.0f} ms", "<= 150 ms")]
    cr = per_op(_prog(sysroot, "bench_pthread_create", ("pthread", "c"), "dynamic", arch),
                100 if quick else 200, 1_000 if quick else 2_000, root=str(sysroot))
    rows.append((f"pthread_create + pthread_join (libpthread.so){on}", f"{cr * 1e6:.0f} us",
                 "", "<= 150 us"))
    return rows


if __name__ == "__main__":
    for r in rows("--quick" in sys.argv):
        print("| " + " | ".join(r) + " |", flush=True)
