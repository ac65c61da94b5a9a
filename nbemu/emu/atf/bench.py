"""ATF figures for ``make bench`` (bench/run.py calls :func:`rows`).

- Per-case overhead: wall time per case of a trivial passing case (``atf_bench:
  trivial``), run one after the other (-j 1) through the runner as ``nbemu atf``
  does: requirement checks, work directory, nbemu process (forked from the fork
  server), result file, clean-up.  Reference: the same with ``--no-fork-server``
  (a fresh ``python -m nbemu.emu.atf.launch`` per case).  Goal: <= 0.3 s.
- Per-case overhead through the real Kyua's interface: wall time of one wrapper of
  ``nbemu atf --kyua-suite`` running the trivial case (what Kyua execs per case),
  forked from the suite's fork server; reference: the same wrapper with
  ``NBEMU_ATF_FORKSERVER=0`` (a cold Python per case).
- Speed-up of ``-j 2`` over ``-j 1``: wall time of eight CPU-bound cases
  (``spin0..7``), listing included.

    python -m nbemu.emu.atf.bench [--quick]     prints the rows
"""
from __future__ import annotations

import statistics
import sys
import time

from .runner import Config, Runner
from .suite import Entry


def _program() -> Entry:
    from fixtures.atf import build_atf
    p = str(build_atf("atf_bench"))
    return Entry(p, "atf_bench")


def per_case(n: int, fork_server: bool = True) -> float:
    """Median seconds per trivial case, sequential, program listed beforehand."""
    r = Runner(Config(jobs=1, fork_server=fork_server))
    try:
        prog = r.list_program(_program())
        if prog.error:
            raise RuntimeError(prog.error)
        tc = next(c for c in prog.cases if c.name == "trivial")
        r.run_case(prog, tc)                       # warm-up (starts the fork server)
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            res = r.run_case(prog, tc)
            ts.append(time.perf_counter() - t0)
            if res.result.status != "passed":
                raise RuntimeError(f"trivial case: {res.result}")
        return statistics.median(ts)
    finally:
        r.cleanup()


def kyua_wrapper_case(n: int, fork_server: bool = True) -> float:
    """Median seconds per run of a Kyua-suite wrapper on the trivial case."""
    import os
    import subprocess
    import tempfile

    from .kyua import _stop_server, prepare_suite
    with tempfile.TemporaryDirectory(prefix="nbemu-atf-bench.") as d:
        suite = os.path.join(d, "suite")
        prepare_suite(suite, [_program().path], [])
        env = dict(os.environ, NBEMU_ATF_FORKSERVER="1" if fork_server else "0")
        argv = [os.path.join(suite, "atf_bench"), "-r", os.path.join(d, "res"), "trivial"]
        try:
            ts = []
            for i in range(n + 1):                 # the first run starts the server
                t0 = time.perf_counter()
                subprocess.run(argv, cwd=d, env=env, check=True, capture_output=True)
                if i:
                    ts.append(time.perf_counter() - t0)
            return statistics.median(ts)
        finally:
            _stop_server(suite)


def suite_wall(jobs: int, iterations: int) -> float:
    r = Runner(Config(jobs=jobs, variables={"iterations": str(iterations)}))
    t0 = time.perf_counter()
    res = r.run([_program()], lambda e, tc: tc.name.startswith("spin"))
    dt = time.perf_counter() - t0
    bad = [x for x in res if x.result.status != "passed"]
    if bad or len(res) != 8:
        raise RuntimeError(f"spin cases: {[str(x.result) for x in bad]}")
    return dt


def rows(quick: bool) -> list[tuple[str, str, str, str]]:
    """(what, nbemu, reference, goal) rows for BENCHMARKS.md."""
    n = 5 if quick else 20
    fast = per_case(n)
    slow = per_case(max(2, n // 4), fork_server=False)
    out = [("ATF per-case overhead (trivial passing case, -j 1)",
            f"{fast:.3f} s per case",
            f"new Python process per case (--no-fork-server): {slow:.3f} s", "<= 0.3 s")]
    kfast = kyua_wrapper_case(n)
    kslow = kyua_wrapper_case(max(2, n // 4), fork_server=False)
    out.append(("Kyua per-case overhead (a `--kyua-suite` wrapper on the trivial case)",
                f"{kfast:.3f} s per case",
                f"cold Python per case (NBEMU_ATF_FORKSERVER=0): {kslow:.3f} s", "<= 0.3 s"))
    iters = 10_000_000 if quick else 40_000_000
    reps = 1 if quick else 2
    t1 = min(suite_wall(1, iters) for _ in range(reps))
    t2 = min(suite_wall(2, iters) for _ in range(reps))
    out.append(("ATF `-j 2` vs `-j 1` (8 CPU-bound cases)", f"**{t1 / t2:.2f}x** speed-up",
                f"-j 1 {t1:.2f} s, -j 2 {t2:.2f} s (wall, listing included)",
                "close to 2x on 2 cores"))
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    for row in rows("--quick" in argv):
        print("| " + " | ".join(row) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
